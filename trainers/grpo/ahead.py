"""Where a step's trajectories come from: sampled for it (``max_off_policy_steps=0``), or
sampled ahead while the learner trains, under a staleness bound (``k > 0``).

Sampling ahead follows AReaL's rule: at policy version ``v`` at most ``(v + k + 1) x
tasks_per_step`` groups have been started (dropped ones are replaced), so while step ``s``
trains, the groups of the next ``k`` steps are already being played. Each step takes the first
``tasks_per_step`` groups to finish (all ``group_size`` samples of a task together) whose oldest
sampled token is at most ``k`` versions old; an older group (a slow episode overtaken by ``k``
updates) is dropped and counted, never trained. Tasks are numbered in one sequence (task seed =
``seed + index``, as in the synchronous loop); a checkpoint records which were started and not
yet trained, and a resumed run replays those first, so no group is trained twice and only the
episodes in flight at a crash are lost.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agentgym.policy import Policy
from agentgym.rollout import EnvPool, GroupStream, RolloutConfig, TrajectoryWriter, rollout
from agentgym.trainers.grpo.config import GRPOConfig
from agentgym.types import Trajectory


@dataclass
class AheadState:
    """What a checkpoint keeps of the sampler ahead.

    Attributes:
        next_task: Index of the next task never started.
        pending: Indices started but neither trained nor dropped (replayed on resume).
        dropped: Groups dropped as too stale so far.
    """

    next_task: int = 0
    pending: list[int] = field(default_factory=list)
    dropped: int = 0


class StepSource(Protocol):
    """Gives each step its trajectories (and how many groups it dropped)."""

    async def batch(self, step: int, path: Path) -> tuple[list[Trajectory], int]: ...

    def state(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


class Synchronous:
    """Step ``s`` plays tasks ``seed + s*T .. seed + (s+1)*T - 1`` now, ``G`` samples each."""

    def __init__(
        self, envs: EnvPool, policy: Policy, settings: RolloutConfig, seed: int, cfg: GRPOConfig
    ) -> None:
        self.envs, self.policy, self.settings = envs, policy, settings
        self.seed, self.tasks, self.g = seed, cfg.tasks_per_step, cfg.group_size

    async def batch(self, step: int, path: Path) -> tuple[list[Trajectory], int]:
        first = self.seed + step * self.tasks
        with TrajectoryWriter(path) as writer:
            tasks = list(range(first, first + self.tasks))
            return await rollout(self.envs, self.policy, tasks, self.g, self.settings, writer), 0

    def state(self) -> dict[str, Any]:
        return {}

    async def aclose(self) -> None:
        return None


class Ahead:
    """Samples up to ``k`` steps ahead of the learner (see the module's docstring).

    Args:
        stream: Plays the groups.
        seed: Task seed of index 0.
        tasks: Groups per step (``tasks_per_step``).
        k: ``max_off_policy_steps``.
        state: Where a resumed run left off (``AheadState``'s fields), or None.
    """

    def __init__(
        self, stream: GroupStream, seed: int, tasks: int, k: int, state: dict[str, Any] | None
    ) -> None:
        self.stream, self.seed, self.tasks, self.k = stream, seed, tasks, k
        self.at = AheadState(**(state or {}))
        self._replay = list(self.at.pending)  # a resumed run's unfinished groups go first
        self.at.pending = []

    def _fill(self) -> None:
        """Start groups until ``(k + 1) x tasks`` are under way (the learner holds none)."""
        while len(self.at.pending) < (self.k + 1) * self.tasks:
            if self._replay:
                index = self._replay.pop(0)
            else:
                index, self.at.next_task = self.at.next_task, self.at.next_task + 1
            self.at.pending.append(index)
            self.stream.submit(self.seed + index)

    async def batch(self, step: int, path: Path) -> tuple[list[Trajectory], int]:
        """The groups step ``step`` trains (written to ``path``), and the number dropped."""
        self._fill()
        groups: list[list[Trajectory]] = []
        dropped = 0
        while len(groups) < self.tasks:
            group = await self.stream.next()
            self.at.pending.remove(group[0].task - self.seed)
            if step - oldest_version(group, step) > self.k:
                dropped += 1
                self.at.dropped += 1
                self._fill()
                continue
            groups.append(group)
        trajs = [t for g in sorted(groups, key=lambda g: g[0].task) for t in g]
        with TrajectoryWriter(path) as writer:
            for traj in trajs:
                writer.write(traj)
        return trajs, dropped

    def state(self) -> dict[str, Any]:
        return asdict(self.at) | {"pending": self._replay + self.at.pending}

    async def aclose(self) -> None:
        await self.stream.aclose()


def step_source(
    envs: EnvPool,
    policy: Policy,
    settings: RolloutConfig,
    cfg: GRPOConfig,
    seed: int,
    state: dict[str, Any],
) -> StepSource:
    """Sampling for each step (``max_off_policy_steps=0``), or ahead of the learner."""
    if cfg.max_off_policy_steps == 0:
        return Synchronous(envs, policy, settings, seed, cfg)
    stream = GroupStream(envs, policy, cfg.group_size, settings)
    return Ahead(stream, seed, cfg.tasks_per_step, cfg.max_off_policy_steps, state)


def oldest_version(group: list[Trajectory], default: int) -> int:
    """The version of the oldest sampled token of ``group`` (``default`` if none)."""
    return min(
        (v for t in group for v in t.token_versions if v is not None),
        default=default,
    )


def staleness(trajs: list[Trajectory], step: int) -> dict[str, Any]:
    """``staleness_*`` metrics over the sampled tokens trained at ``step``: mean, max, and
    the histogram (``staleness_hist[i]``: tokens ``i`` versions old)."""
    ages = Counter(step - v for t in trajs for v in t.token_versions if v is not None)
    n = sum(ages.values())
    top = max(ages, default=0)
    return {
        "staleness_mean": sum(a * c for a, c in ages.items()) / max(n, 1),
        "staleness_max": top,
        "staleness_hist": [ages.get(a, 0) for a in range(top + 1)],
    }
