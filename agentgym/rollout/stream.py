"""Groups of episodes as they finish, for a trainer that samples while it learns.

``rollout`` plays a fixed list of tasks and returns when the last episode ends. A
``GroupStream`` instead takes tasks at any time (``submit``) and hands back each task's group
(its ``group_size`` trajectories, in sample order) as soon as the group's last episode ends
(``next``), in the order groups finish. It is the engine's ``Workers`` with a different
collector: failed episodes are recorded in their group, and past ``max_failure_rate`` of the
episodes submitted so far ``next`` raises.
"""

from __future__ import annotations

import asyncio

from agentgym.policy import Policy
from agentgym.rollout.config import RolloutConfig
from agentgym.rollout.engine import EnvPool, Workers
from agentgym.types import Trajectory


class GroupStream:
    """Plays submitted tasks, ``group_size`` episodes each; yields groups as they finish.

    Args:
        envs: The pool the workers take their environments from (the caller closes it).
        policy: The policy that plays.
        group_size: Episodes per task.
        cfg: Episode limits and the number of workers (``concurrency``).
    """

    def __init__(self, envs: EnvPool, policy: Policy, group_size: int, cfg: RolloutConfig) -> None:
        self.group_size = group_size
        self._done: asyncio.Queue[list[Trajectory] | Exception] = asyncio.Queue()
        self._partial: dict[int, list[Trajectory]] = {}
        self.workers = Workers(envs, policy, cfg, self._finish, self._done.put_nowait)

    def submit(self, task: int) -> None:
        """Queue ``group_size`` episodes of ``task`` (starting the workers on first use)."""
        for sample in range(self.group_size):
            self.workers.submit(task, sample)

    async def next(self) -> list[Trajectory]:
        """The next group to finish (waits for one)."""
        item = await self._done.get()
        if isinstance(item, Exception):
            raise item
        return item

    async def aclose(self) -> None:
        """Stop the workers; the episodes in flight are abandoned, their environments closed."""
        await self.workers.aclose()

    def _finish(self, traj: Trajectory) -> None:
        group = self._partial.setdefault(traj.task, [])
        group.append(traj)
        if len(group) == self.group_size:
            del self._partial[traj.task]
            self._done.put_nowait(sorted(group, key=lambda t: t.sample))
