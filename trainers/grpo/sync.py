"""Getting the learner's weights to the sampler, and proving they arrived.

* ``hf`` rollouts share the learner's model object: nothing to copy. Beside a sharded learner
  (``trainer.fsdp``) they sample with a replica, which loads the gathered weights.
* ``vllm`` rollouts, ``trainer.weight_sync=broadcast``: every tensor goes to the engines over a
  gloo group of their own (``policies/vllm_weights.py``), then a prefix-cache reset (its KV was
  computed with the old weights).
* ``vllm``, ``weight_sync=disk``: the learner writes safetensors into the folder the engine
  loaded, then ``collective_rpc("reload_weights")`` and the prefix-cache reset.

After every sync, ``probe`` samples a few tokens through the real sampling path and compares
the sampler's log-probs with the learner's on the same ids. A silent failed sync (the most
common bug reported against RL trainers) shows up as a gap, and the run stops.
"""

from __future__ import annotations

from statistics import fmean

from agentgym._compute import run_torch
from agentgym.errors import AgentGymError
from agentgym.policies.base import TokenPolicy, TrainablePolicy
from agentgym.policies.hf import HFPolicy
from agentgym.policies.router import Router
from agentgym.policies.vllm_weights import WeightSender
from agentgym.trainers.grpo.learner import Learner


class SyncError(AgentGymError):
    """The sampler's log-probs disagree with the learner's after a weight sync."""


async def push_weights(
    policy: TokenPolicy, learner: Learner, version: int, sender: WeightSender | None = None
) -> None:
    """Make ``policy`` sample from the learner's current weights, as policy ``version``
    (through ``sender``'s broadcast where given, else through files).

    The engine swaps weights between turns (``policy.gate``): turns in flight end on the old
    weights, later turns of the same episodes run on the new ones, stamped ``version``."""
    if not isinstance(policy, TrainablePolicy):
        raise TypeError(f"{type(policy).__name__} cannot load a learner's weights")
    if isinstance(policy, HFPolicy) and learner.sharded:  # a replica beside the shards
        state, _ = await run_torch(learner.policy_weights)
        async with policy.gate.changing():
            await run_torch(policy.model.load_state_dict, state)
            policy.version = version
        return
    if policy.weights_dir is None:  # the learner's own model: the update itself was the sync
        return
    if sender is not None:
        state, _ = await run_torch(learner.policy_weights)
        async with policy.gate.changing():
            await sender.send(state)
            await policy.forget_cache()
            policy.version = version
        return
    await run_torch(learner.export, policy.weights_dir)
    async with policy.gate.changing():
        await policy.load_weights()
        policy.version = version


def _engines(policy: TokenPolicy) -> list[TokenPolicy]:
    """A router's engines, or the policy itself."""
    return policy.engines if isinstance(policy, Router) else [policy]


async def connect(policy: TokenPolicy) -> WeightSender:
    """The weight group of ``policy``'s vLLM engines (a router's: all of them)."""
    return await WeightSender.connect([e.engine for e in _engines(policy)])


async def probe(
    policy: TokenPolicy, learner: Learner, prompt_ids: list[int], tol: float, tokens: int = 16
) -> float:
    """Mean |sampler - learner| log-prob over ``tokens`` sampled ids (the largest over a
    router's engines: each must have the weights); ``SyncError`` if > tol."""
    return max([await _probe_one(e, learner, prompt_ids, tol, tokens) for e in _engines(policy)])


async def _probe_one(
    policy: TokenPolicy, learner: Learner, prompt_ids: list[int], tol: float, tokens: int
) -> float:
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
