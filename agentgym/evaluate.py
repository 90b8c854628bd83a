"""Evaluation as a library function: ``agentgym.evaluate(env, policy)``.

    import agentgym

    summary = agentgym.evaluate("guess_number", "scripted", episodes=8, out="runs/x")
    summary = agentgym.evaluate("deep_research", {"name": "hf", "model": "MODEL"}, episodes=8)

The policy is a built ``Policy``, or given as on the command line: a backend's name (with its
defaults) or its ``policy.*`` keys as a dict. Plays ``episodes`` episodes (``episodes //
group_size`` tasks from ``seed`` on, ``group_size`` samples each) with the rollout engine,
writes ``trajectories.jsonl`` (resuming the episodes already there) and ``summary.json`` into
``out`` when it is given, and returns the summary (mean reward, success, pass@k, turns,
tokens, format errors, seconds). ``agentgym eval`` is this function behind a config and a
progress bar, and a trainer's held-out evaluation is this function too.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentgym.asyncenv import EpisodeEnv
from agentgym.policies.config import build_policy
from agentgym.policy import Policy
from agentgym.registration import make, spec
from agentgym.rollout import EnvPool, RolloutConfig, TrajectoryWriter, rollout, summarize
from agentgym.types import Trajectory

Envs = str | EnvPool | Callable[[], EpisodeEnv]
"""An environment id, a pool of environments, or a factory of them."""


def evaluate(
    env: Envs,
    policy: Policy | str | dict[str, Any],
    *,
    episodes: int = 8,
    group_size: int = 1,
    seed: int = 0,
    out: str | Path | None = None,
    settings: RolloutConfig | None = None,
    on_episode: Callable[[Trajectory], None] | None = None,
) -> dict[str, Any]:
    """Evaluate ``policy`` on ``env``; return the summary. ``on_episode(t)`` is called for
    every episode as it ends (a resumed run's episodes first). Runs its own event loop (and
    closes a policy it built); from async code, await ``aevaluate``."""

    async def main() -> dict[str, Any]:
        played = policy if isinstance(policy, Policy) else _built(env, policy)
        try:
            return await aevaluate(
                env,
                played,
                episodes=episodes,
                group_size=group_size,
                seed=seed,
                out=out,
                settings=settings,
                on_episode=on_episode,
            )
        finally:
            if played is not policy:
                await played.aclose()

    return asyncio.run(main())


def _built(env: Envs, policy: str | dict[str, Any]) -> Policy:
    """A policy given by name or ``policy.*`` keys, with ``env``'s scripted baselines."""
    baselines = spec(env).load().baselines if isinstance(env, str) else {}
    return build_policy(policy, baselines)


async def aevaluate(
    env: Envs,
    policy: Policy,
    *,
    episodes: int = 8,
    group_size: int = 1,
    seed: int = 0,
    out: str | Path | None = None,
    settings: RolloutConfig | None = None,
    on_episode: Callable[[Trajectory], None] | None = None,
) -> dict[str, Any]:
    """Async ``evaluate`` (``policy`` built)."""
    if episodes % group_size:
        raise ValueError(f"episodes ({episodes}) must be a multiple of group_size ({group_size})")
    envs: EnvPool | Callable[[], EpisodeEnv] = (lambda: make(env)) if isinstance(env, str) else env
    tasks = list(range(seed, seed + episodes // group_size))
    settings = settings or RolloutConfig()
    start = time.perf_counter()
    if out is None:
        trajs = await rollout(envs, policy, tasks, group_size, settings, None, on_episode)
        return {**summarize(trajs, wall_seconds=time.perf_counter() - start),
                "episodes_asked": episodes}  # fmt: skip
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with TrajectoryWriter(out / "trajectories.jsonl") as writer:
        if on_episode is not None:  # a resumed run's episodes count too (a bar starts there)
            for t in writer.previous:
                on_episode(t)
        new = await rollout(envs, policy, tasks, group_size, settings, writer, on_episode)
        done = writer.previous + new
    summary = summarize(done, wall_seconds=time.perf_counter() - start)
    summary["resumed_episodes"] = len(writer.previous)
    summary["episodes_asked"] = episodes
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
