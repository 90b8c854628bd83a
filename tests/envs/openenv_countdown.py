"""An OpenEnv environment written with openenv-core's own server classes, as its users write
them (an ``MCPEnvironment`` with FastMCP tools, served by ``create_app``): the model is told
a number and must ``say`` it. Served by ``uvicorn tests.envs.openenv_countdown:app``."""

from __future__ import annotations

from typing import Any

from fastmcp import FastMCP
from openenv.core.env_server.http_server import create_app
from openenv.core.env_server.mcp_environment import MCPEnvironment
from openenv.core.env_server.mcp_types import CallToolAction, CallToolObservation
from openenv.core.env_server.types import Observation, State


class TaskObservation(Observation):
    prompt: str = ""


class Countdown(MCPEnvironment):
    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self) -> None:
        mcp = FastMCP("countdown")
        self.target, self.said, self.steps = 0, None, 0

        @mcp.tool
        def say(number: int) -> str:
            """Say a number; the episode ends.

            Args:
                number: The number.
            """
            self.said = number
            return "said"

        @mcp.tool
        def hint() -> str:
            """How many digits the number has."""
            return f"{len(str(self.target))} digits"

        super().__init__(mcp)

    def reset(self, seed: int | None = None, episode_id: str | None = None, **kw: Any) -> Any:
        self.target, self.said, self.steps = (seed or 0) % 97 + 1, None, 0
        return TaskObservation(prompt=f"Say {self.target} with the say tool.")

    async def step_async(self, action: Any, timeout_s: float | None = None, **kw: Any) -> Any:
        obs = await super().step_async(action, timeout_s=timeout_s, **kw)
        self.steps += 1
        if isinstance(action, CallToolAction) and action.tool_name == "say":
            obs.reward = 1.0 if self.said == self.target else 0.0
            obs.done = True
        return obs

    def _step_impl(self, action: Any, timeout_s: float | None = None, **kw: Any) -> Observation:
        return Observation(done=False, reward=0.0)

    @property
    def state(self) -> State:
        return State(episode_id=None, step_count=self.steps)


app = create_app(Countdown, CallToolAction, CallToolObservation, max_concurrent_envs=8)
