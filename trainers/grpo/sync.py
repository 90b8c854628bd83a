"""Proving that a weight sync arrived.

A trainable policy owns its sync (``TokenPolicy.sync_from``: vLLM engines by broadcast or
files, an hf replica by ``load_state_dict``, an hf sampler of the learner's own model by
nothing at all). After every sync, ``probe`` samples a few tokens through the real sampling
path of each replica and compares the sampler's log-probs with the learner's on the same ids.
A silent failed sync (the most common bug reported against RL trainers) shows up as a gap,
and the run stops.
"""

from __future__ import annotations

from statistics import fmean

from agentgym._compute import run_torch
from agentgym.errors import SyncError
from agentgym.policies.base import TokenPolicy
from agentgym.trainers.learner import Learner


async def probe(
    policy: TokenPolicy, learner: Learner, prompt_ids: list[int], tol: float, tokens: int = 16
) -> float | None:
    """Mean |sampler - learner| log-prob over ``tokens`` sampled ids, the learner computing
    in the sampler's dtype (the largest over the policy's replicas: each must have the weights;
    None when it has none, sampling with the learner's own model); ``SyncError`` if > tol."""
    gaps = [await _probe_one(e, learner, prompt_ids, tol, tokens) for e in policy.replicas()]
    return max(gaps) if gaps else None


async def _probe_one(
    policy: TokenPolicy, learner: Learner, prompt_ids: list[int], tol: float, tokens: int
) -> float:
    sample = await policy.generate(list(prompt_ids), tokens, seed=0)
    if not sample.token_ids:
        return 0.0
    full = list(prompt_ids) + sample.token_ids
    # computed as the sampler computes (float32 on a CPU under a bf16 learner): the probe
    # asks whether the weights arrived; bf16's own rounding is the step's sampler_gap
    mine = await run_torch(learner.logprobs, [full], starts=[len(prompt_ids)], as_sampler=True)
    mine = mine[0][len(prompt_ids) :]
    gap = fmean(abs(a - b) for a, b in zip(sample.logprobs, mine, strict=True))
    if gap > tol:
        raise SyncError(
            f"after the weight sync the sampler's log-probs differ from the learner's by "
            f"{gap:.4f} on average (tolerance {tol}); the sampler is not running the learner's "
            "weights. Check the sync path, or raise trainer.sync_probe_tol if the sampler runs "
            "in lower precision."
        )
    return gap
