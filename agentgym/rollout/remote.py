"""Environments in Ray actors (``rollout.backend=ray``), for when one machine is not enough.

``RayEnv`` stands in for an ``AgentEnv`` in the rollout engine: each one owns an actor, on
any node of the Ray cluster, that builds the real environment with ``agentgym.make`` and runs
its ``areset``/``astep``. The engine's event loop awaits the actors' answers, so hundreds of
remote environments are driven concurrently from one process, next to the policy.
"""

from __future__ import annotations

import os
from typing import Any

from agentgym._imports import require
from agentgym.asyncenv import Action, StepReturn
from agentgym.cluster import next_node
from agentgym.types import Observation


class _EnvActor:
    """Runs inside a Ray worker process."""

    def __init__(self, env_id: str, kwargs: dict[str, Any], imports: list[str], cwd: str) -> None:
        from agentgym.registration import load_module, make

        if os.path.isdir(cwd):  # the driver's, so that `import=` finds the same modules
            os.chdir(cwd)
        for module in imports:
            load_module(module)
        self.env = make(env_id, **kwargs)

    async def areset(
        self, seed: int | None, options: dict[str, Any] | None
    ) -> tuple[Observation, dict[str, Any], str]:
        obs, info = await self.env.areset(seed=seed, options=options)
        return obs, info, self.env.env_id

    async def astep(self, action: Action) -> StepReturn:
        return await self.env.astep(action)  # the new messages only: O(T) transfer, not O(T^2)


class RayEnv:
    """An environment whose work happens in a Ray actor: the rollout engine's ``EpisodeEnv``
    (the actor holds the environment, the engine the conversation)."""

    def __init__(self, env_id: str, kwargs: dict[str, Any], imports: list[str]) -> None:
        ray = require("ray", "ray")
        actor = ray.remote(num_cpus=0)(_EnvActor).options(scheduling_strategy=next_node(ray))
        self._ray = ray
        self._actor = actor.remote(env_id, kwargs, imports, os.getcwd())
        self.env_id = env_id

    async def areset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        obs, info, self.env_id = await self._actor.areset.remote(seed, options)
        return obs, info

    async def astep(self, action: Action) -> StepReturn:
        result: StepReturn = await self._actor.astep.remote(action)
        return result

    async def aclose(self) -> None:
        self._ray.kill(self._actor)
