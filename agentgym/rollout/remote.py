"""Environments in Ray actors (``rollout.backend=ray``), for when one machine is not enough.

``RayEnv`` stands in for an ``AgentEnv`` in the rollout engine: each one owns an actor, on
any node of the Ray cluster, that builds the real environment with ``agentgym.make`` and runs
its ``areset``/``astep``. The engine's event loop awaits the actors' answers, so hundreds of
remote environments are driven concurrently from one process, next to the policy.
"""

from __future__ import annotations

import itertools
import os
import socket
import sys
from typing import Any

from agentgym._imports import require
from agentgym.types import Message, Observation, ToolSpec


class _EnvActor:
    """Runs inside a Ray worker process."""

    def __init__(self, env_id: str, kwargs: dict[str, Any], imports: list[str], cwd: str) -> None:
        import agentgym
        from agentgym.registration import load_module

        if os.path.isdir(cwd):  # the driver's, so that `import=` finds the same modules
            os.chdir(cwd)
        for module in imports:
            load_module(module)
        self.env = agentgym.make(env_id, **kwargs)

    async def areset(
        self, seed: int | None, options: dict[str, Any] | None
    ) -> tuple[Observation, dict[str, Any], str, list[ToolSpec]]:
        obs, info = await self.env.areset(seed=seed, options=options)
        return obs, info, self.env.env_id, self.env.tool_specs

    async def astep(self, action: Message | str | dict[str, Any]) -> tuple[Any, ...]:
        return await self.env.astep(action)  # the new messages only: O(T) transfer, not O(T^2)


def ensure_ray(address: str | None) -> None:
    """Connect to ``address`` (a running cluster), or start a local one of this process's
    own (never a cluster that happens to run on this machine), once."""
    ray = require("ray", "ray")
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(address="local", include_dashboard=False, log_to_driver=False)


def meeting_point() -> tuple[str, int]:
    """Where processes on any node of the run reach this one to form a torch.distributed
    group with it: the Ray node's address when Ray runs here (actors may be on other nodes),
    else the loopback; and a free port."""
    host = "127.0.0.1"
    ray = sys.modules.get("ray")  # never imported: not running here
    if ray is not None and ray.is_initialized():
        host = ray.util.get_node_ip_address()
    with socket.socket() as s:
        s.bind(("", 0))
        return host, int(s.getsockname()[1])


_TURN = itertools.count()


def _next_node(ray: Any) -> Any:
    """The cluster's alive nodes in turn (environments, browsers and containers, are the load).

    Hard affinity: Ray's SPREAD, and soft node affinity too, left zero-CPU actors all on one
    node when the machines were busy (7 of 30 placements of four actors, measured). A node lost
    between listing and placing fails its actor, as losing it later would.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
    return NodeAffinitySchedulingStrategy(nodes[next(_TURN) % len(nodes)], soft=False)


class RayEnv:
    """An environment whose work happens in a Ray actor; the rollout engine's stand-in."""

    def __init__(self, env_id: str, kwargs: dict[str, Any], imports: list[str]) -> None:
        ray = require("ray", "ray")
        actor = ray.remote(num_cpus=0)(_EnvActor).options(scheduling_strategy=_next_node(ray))
        self._ray = ray
        self._actor = actor.remote(env_id, kwargs, imports, os.getcwd())
        self.env_id = env_id
        self.tool_specs: list[ToolSpec] = []
        self.messages: list[Message] = []

    async def areset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        obs, info, self.env_id, self.tool_specs = await self._actor.areset.remote(seed, options)
        self.messages = list(obs.messages)
        return obs, info

    async def astep(
        self, action: Message | str | dict[str, Any]
    ) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = await self._actor.astep.remote(action)
        self.messages += [info["action"], *obs.messages]  # the transcript, kept here
        return obs, reward, terminated, truncated, info

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        self._ray.kill(self._actor)
