"""Evaluation as a library function: ``agentgym.evaluate(env, policy)``.

    import agentgym
    from agentgym.policies.scripted import ScriptedPolicy

    summary = agentgym.evaluate("guess_number", ScriptedPolicy(oracle), episodes=8, out="runs/x")

Plays ``episodes`` episodes (``episodes // group_size`` tasks from ``seed`` on, ``group_size``
samples each) with the rollout engine, writes ``trajectories.jsonl`` (resuming the episodes
already there) and ``summary.json`` into ``out`` when it is given, and returns the summary
(mean reward, success, pass@k, turns, tokens, format errors, seconds). ``agentgym eval`` is
this function behind a config and a progress bar.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import agentgym
from agentgym.policy import Policy
from agentgym.rollout import RolloutSettings, TrajectoryWriter, rollout, summarize
from agentgym.rollout.engine import EpisodeEnv
from agentgym.types import Trajectory


def evaluate(
    env: str | Callable[[], EpisodeEnv],
    policy: Policy,
    *,
    episodes: int = 8,
    group_size: int = 1,
    seed: int = 0,
    out: str | Path | None = None,
    settings: RolloutSettings | None = None,
    on_episode: Callable[[Trajectory], None] | None = None,
) -> dict[str, Any]:
    """Evaluate ``policy`` on ``env`` (an id, or a factory of environments); return the
    summary. ``on_episode(t)`` is called for every episode as it ends (a resumed run's
    episodes first). Runs its own event loop; from async code, await ``aevaluate``."""
    return asyncio.run(
        aevaluate(
            env,
            policy,
            episodes=episodes,
            group_size=group_size,
            seed=seed,
            out=out,
            settings=settings,
            on_episode=on_episode,
        )
    )


async def aevaluate(
    env: str | Callable[[], EpisodeEnv],
    policy: Policy,
    *,
    episodes: int = 8,
    group_size: int = 1,
    seed: int = 0,
    out: str | Path | None = None,
    settings: RolloutSettings | None = None,
    on_episode: Callable[[Trajectory], None] | None = None,
) -> dict[str, Any]:
    """Async ``evaluate``."""
    if episodes % group_size:
        raise ValueError(f"episodes ({episodes}) must be a multiple of group_size ({group_size})")
    make_env = (lambda: agentgym.make(env)) if isinstance(env, str) else env
    tasks = list(range(seed, seed + episodes // group_size))
    settings = settings or RolloutSettings()
    start = time.perf_counter()
    if out is None:
        trajs = await rollout(make_env, policy, tasks, group_size, settings, None, on_episode)
        return summarize(trajs, wall_seconds=time.perf_counter() - start)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with TrajectoryWriter(out / "trajectories.jsonl") as writer:
        if on_episode is not None:  # a resumed run's episodes count too (a bar starts there)
            for t in writer.previous:
                on_episode(t)
        new = await rollout(make_env, policy, tasks, group_size, settings, writer, on_episode)
        done = writer.previous + new
    summary = summarize(done, wall_seconds=time.perf_counter() - start)
    summary["resumed_episodes"] = len(writer.previous)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
