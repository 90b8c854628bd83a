"""Getting the learner's weights to the sampler, and proving they arrived.

* ``hf`` rollouts share the learner's model object: nothing to copy.
* ``vllm`` rollouts: the learner writes safetensors into the folder the engine loaded, then
  ``collective_rpc("reload_weights")`` and a prefix-cache reset (its KV was computed with the
  old weights).

After every sync, ``probe`` samples a few tokens through the real sampling path and compares
the sampler's log-probs with the learner's on the same ids. A silent failed sync (the most
common bug reported against RL trainers) shows up as a gap, and the run stops.
"""

from __future__ import annotations

from statistics import fmean

from agentgym._compute import run_torch
from agentgym.errors import AgentGymError
from agentgym.policies.base import TokenPolicy, TrainablePolicy
from agentgym.trainers.grpo.learner import Learner


class SyncError(AgentGymError):
    """The sampler's log-probs disagree with the learner's after a weight sync."""


async def push_weights(policy: TrainablePolicy, learner: Learner) -> None:
    """Make ``policy`` sample from the learner's current weights."""
    if policy.weights_dir is None:  # it holds the learner's own model: nothing to copy
        return
    await run_torch(learner.export, policy.weights_dir)
    await policy.load_weights()


async def probe(
    policy: TokenPolicy, learner: Learner, prompt_ids: list[int], tol: float, tokens: int = 16
) -> float:
    """Mean |sampler - learner| log-prob over ``tokens`` sampled ids; ``SyncError`` if > tol."""
    sample = await policy.generate(list(prompt_ids), tokens, seed=0)
    if not sample.token_ids:
        return 0.0
    full = list(prompt_ids) + sample.token_ids
    mine = (await run_torch(learner.logprobs, [full], starts=[len(prompt_ids)]))[0]
    mine = mine[len(prompt_ids) :]
    gap = fmean(abs(a - b) for a, b in zip(sample.logprobs, mine, strict=True))
    if gap > tol:
        raise SyncError(
            f"after the weight sync the sampler's log-probs differ from the learner's by "
            f"{gap:.4f} on average (tolerance {tol}); the sampler is not running the learner's "
            "weights. Check the sync path, or raise trainer.sync_probe_tol if the sampler runs "
            "in lower precision."
        )
    return gap
