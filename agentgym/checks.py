"""A reward is checked before it is trusted (``agentgym check env=ENV``, and ``agentgym train``
before its first step).

Two kinds of baseline play a sample of the environment's training tasks:

* the environment's ``oracle`` (its scripted baseline that reads the gold answer) must succeed
  on at least ``oracle_success`` of them (an env attribute, 1.0 unless set; an env without an
  oracle is not asked);
* the gym's own null baselines, which apply to any environment, a user's too, must earn
  nothing (mean reward at most 0, no success): ``silent`` answers every turn with an empty
  message, ``prose`` with a sentence that says nothing, and ``trivial:TOOL`` calls one of the
  env's tools at once with trivial arguments (empty strings, zeros, false, empty lists).

Peers' users report environments whose reward pays an agent that did nothing; a run on such a
reward learns to do nothing. A failed check names the baseline and the tasks that paid it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agentgym.errors import RewardCheckError
from agentgym.policies.scripted import ScriptedPolicy
from agentgym.registration import make, spec
from agentgym.rollout import RolloutConfig, rollout, summarize
from agentgym.types import Message, ToolSpec

Script = Callable[[list[Message], dict[str, Any], np.random.Generator], str]
PROSE = "I am not sure; I would need more time to look into this."
TRIVIAL = {"string": "", "integer": 0, "number": 0, "boolean": False, "array": [], "object": {}}


@dataclass
class Row:
    """One baseline's result on the sample."""

    baseline: str
    expected: str
    mean_reward: float
    success_rate: float
    paid: list[int] = field(default_factory=list)
    """Tasks that broke the expectation (a null baseline paid, the oracle failed)."""

    @property
    def ok(self) -> bool:
        return not self.paid


def null_baselines(tools: list[ToolSpec]) -> dict[str, Script]:
    """The gym's null baselines for an environment with ``tools``."""
    scripts: dict[str, Script] = {"silent": lambda m, i, r: "", "prose": lambda m, i, r: PROSE}
    for tool in tools:
        props = tool.parameters.get("properties", {})
        args = {name: TRIVIAL.get(p.get("type", "string"), "") for name, p in props.items()}
        scripts[f"trivial:{tool.name}"] = _say(
            f"<tool_call>{json.dumps({'name': tool.name, 'arguments': args})}</tool_call>"
        )
    return scripts


def _say(text: str) -> Script:
    """A script that says ``text`` every turn."""
    return lambda messages, info, rng: text


async def check_rewards(
    env_id: str, kwargs: dict[str, Any], tasks: int = 8, seed: int = 0, concurrency: int = 8
) -> list[Row]:
    """Play the oracle (if any) and the null baselines on ``tasks`` training tasks."""
    env_cls = spec(env_id).load()
    probe = make(env_id, **kwargs)
    try:
        obs, _ = await probe.areset(seed=seed, options={"split": "train"})
    finally:
        await probe.aclose()
    plan: list[tuple[str, Script, float | None]] = []
    oracle = env_cls.baselines.get("oracle")
    expected = env_cls.oracle_success
    if oracle is not None and expected is not None:
        plan.append(("oracle", oracle, float(expected)))
    plan += [(name, script, None) for name, script in null_baselines(obs.tools).items()]
    cfg = RolloutConfig(split="train", concurrency=concurrency)
    seeds = list(range(seed, seed + tasks))
    rows = []
    for name, script, want in plan:
        trajs = await rollout(lambda: make(env_id, **kwargs), ScriptedPolicy(script), seeds, 1, cfg)
        s = summarize(trajs)
        if want is None:
            paid = [t.task for t in trajs if t.reward > 0 or t.success]
            rows.append(Row(name, "earns nothing", s["mean_reward"], s["success_rate"], paid))
        else:
            failed = [t.task for t in trajs if not t.success]
            bad = failed if s["success_rate"] < want else []
            rows.append(Row(name, f"success >= {want:g}", s["mean_reward"], s["success_rate"], bad))
    return rows


def verdict(env_id: str, rows: list[Row]) -> None:
    """``RewardCheckError`` naming the first baseline that broke its expectation."""
    for row in rows:
        if not row.ok:
            what = (
                f"the oracle succeeded on only {row.success_rate:.0%}"
                if row.baseline == "oracle"
                else f"the null baseline '{row.baseline}' earned {row.mean_reward:+.3f}"
            )
            raise RewardCheckError(
                f"'{env_id}': {what} of its sample (tasks {row.paid[:10]}): its reward cannot "
                f"be trusted. Fix the env's reward (see `agentgym check env={env_id}`), or pass "
                "trainer.check_tasks=0 to train anyway"
            )
