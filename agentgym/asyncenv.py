"""The protocol the rollout engine plays, and the Gymnasium base class of every environment.

``EpisodeEnv`` is what an episode needs of an environment: ``areset``, ``astep``, ``aclose``
and an ``env_id`` for its records. Three kinds implement it: ``AgentEnv`` (tools, in this
process), ``RemoteEnv`` (an environment served over a WebSocket) and ``RayEnv`` (an
environment in a Ray actor). None keeps the conversation: the rollout engine does (``info[
"action"]`` is the assistant message as the environment read it, the observation the new
messages), so an episode has one transcript, wherever its environment runs.

``AsyncEnv`` is the ``gymnasium.Env`` the first two subclass: a subclass writes the async
methods and gets the synchronous Gymnasium API (``reset``, ``step``, ``close``) driven on a
private event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar, runtime_checkable

import gymnasium as gym
from pydantic import BaseModel

from agentgym.errors import EnvError
from agentgym.spaces import ActionSpace, ObservationSpace
from agentgym.types import Message, Observation

T = TypeVar("T")
Action = Message | str | dict[str, Any]
"""An assistant message: a ``Message``, its text, or an OpenAI assistant message dict."""
StepReturn = tuple[Observation, float, bool, bool, dict[str, Any]]


class EpisodeEnv(Protocol):
    """What the rollout engine needs of an environment (see the module docstring)."""

    @property
    def env_id(self) -> str: ...

    async def areset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]: ...

    async def astep(self, action: Action) -> StepReturn: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ProgramEnv(Protocol):
    """An environment whose agent is a program (``env=harness``): after ``areset`` the rollout
    engine hands it an episode of the gateway (``agentgym.gateway.Episode``: the program's
    model address and API key) and the program plays the whole episode in one ``aplay``,
    which returns the one step the engine records (the task's verifier scored it)."""

    async def aplay(self, link: Any) -> StepReturn: ...


class AsyncEnv(gym.Env[Observation, Action]):
    """A Gymnasium environment whose work is async. Subclasses write ``areset``, ``astep``
    and (if they hold browsers, containers or connections) ``arelease``."""

    metadata: dict[str, Any] = {"render_modes": []}
    turn: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    config_model: type[BaseModel] | None = None
    """The model of the environment's options (``env.KEY=``); None: its ``__init__``'s
    arguments are."""
    baselines: dict[str, Callable[..., str]] = {}
    """Scripted policies by name (``policy=scripted policy.script=NAME``): ``(messages, info,
    rng) -> action text``; ``oracle`` solves every task from ``info``."""
    oracle_success: float | None = 1.0
    """The share of tasks the ``oracle`` solves (the reward check holds it to that; None: not
    checked)."""

    @classmethod
    def preflight(cls, config: dict[str, Any]) -> None:
        """Check, before any episode, what an env built with ``config`` needs outside this
        process (a daemon, an image); raise an ``AgentGymError`` that names it and the fix.
        The CLI calls it once per command."""

    @classmethod
    def shows_images(cls, config: dict[str, Any]) -> bool:
        """Whether an env built with ``config`` puts images in its observations (a text-only
        policy cannot act on them; the CLI says so before any work starts)."""
        return False

    def __init__(self) -> None:
        self.observation_space = ObservationSpace()
        self.action_space = ActionSpace()

    @property
    def env_id(self) -> str:
        spec = getattr(self, "spec", None)
        return spec.id if spec is not None else type(self).__name__

    async def areset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        raise NotImplementedError

    async def astep(self, action: Action) -> StepReturn:
        raise NotImplementedError

    async def arelease(self) -> None:
        """Release what the environment holds through I/O (browsers, containers, HTTP
        clients). Override it (idempotently); ``aclose`` and ``close`` call it."""

    async def aclose(self) -> None:
        """Async ``close``: release on the running loop (where the async API made them)."""
        await self.arelease()
        self._close_loop()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        return self._run(self.areset(seed=seed, options=options))

    def step(self, action: Action) -> StepReturn:
        return self._run(self.astep(action))

    def close(self) -> None:
        """Sync ``close``: release on the private loop (where the sync API made them)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.run_until_complete(self.arelease())
        self._close_loop()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Drive an async method from the sync API on this env's private event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coro.close()
            raise EnvError(
                self.env_id,
                self.turn,
                None,
                "sync reset()/step() called inside an event loop; await areset()/astep()",
            )
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    def _close_loop(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.close()
        super().close()
