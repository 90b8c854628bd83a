"""``remote``: an environment served over a WebSocket (``agentgym serve env``, or another
server of the same message shape, such as an OpenEnv environment's ``/ws``).

``agentgym eval env=remote env.url=ws://host:8000 policy=...`` plays the served environment as
if it ran here: reset and step go over one connection per instance (its own session on the
server), and the observation's messages, tools, reward and end come back as they were sent. A
server whose observations are not agentgym's (no ``messages``) is shown to the model as the
observation's JSON in a user message, and the model's text goes back as ``{action_field:
text}`` (OpenEnv's echo environment takes ``{"message": ...}``).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentgym._imports import require
from agentgym.asyncenv import Action, AsyncEnv, StepReturn
from agentgym.config import validate
from agentgym.errors import EnvError
from agentgym.serving import plain
from agentgym.types import Message, Observation, ToolSpec


class RemoteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="the server, ws://host:port (its /ws endpoint is used)")
    action_field: str | None = Field(
        None, description="send the model's text as {field: text} (None: agentgym's message)"
    )
    timeout: float = Field(300.0, gt=0.0, description="seconds a reset or step may take")


class RemoteEnv(AsyncEnv):
    """An environment played over a WebSocket (``agentgym serve env``); the server owns its
    turn limit (a rollout's ``max_turns`` reaches it as a reset option)."""

    config_model = RemoteConfig

    def __init__(self, **config: Any) -> None:
        super().__init__()
        self.cfg = validate(RemoteConfig, config, prefix="env")
        self._ws: Any = None
        self._tools: list[ToolSpec] = []

    async def _send(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        import asyncio

        websockets = require("websockets.asyncio.client", "retrieval")
        closed = require("websockets", "retrieval").ConnectionClosed
        url = self.cfg.url.rstrip("/") + "/ws"
        try:
            if self._ws is None:
                connect = websockets.connect(url, max_size=None)
                self._ws = await asyncio.wait_for(connect, self.cfg.timeout)
            await self._ws.send(json.dumps({"type": kind, "data": data}))
            reply = json.loads(await asyncio.wait_for(self._ws.recv(), self.cfg.timeout))
        except TimeoutError:
            raise EnvError(self.env_id, self.turn, None,
                           f"the env server at {url} did not answer a {kind} in "
                           f"env.timeout={self.cfg.timeout:g} s (frozen?)") from None  # fmt: skip
        except (OSError, closed) as exc:
            self._ws = None
            raise EnvError(self.env_id, self.turn, None,
                           f"the env server at {url} is gone ({type(exc).__name__}: {exc}); is "
                           "`agentgym serve env` running there?") from None  # fmt: skip
        if reply.get("type") == "error":
            problem = (reply.get("data") or {}).get("message", "unknown error")
            raise EnvError(self.env_id, self.turn, None, f"the server answered: {problem}")
        return dict(reply.get("data") or {})

    def _read(self, data: dict[str, Any]) -> tuple[Observation, dict[str, Any]]:
        obs = data.get("observation") or {}
        if "messages" in obs:  # an agentgym server
            self._tools = [ToolSpec.model_validate(t) for t in obs.get("tools", [])]
            messages = [Message.model_validate(m) for m in obs["messages"]]
            return Observation(messages=messages, tools=self._tools), dict(obs.get("info") or {})
        text = json.dumps(obs, default=str)  # another server's fields: show them as they are
        return Observation(messages=[Message(role="user", content=text)]), {}

    async def areset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        self.turn = 0
        data = await self._send("reset", {"seed": seed, "options": options})
        return self._read(data)

    async def astep(self, action: Action) -> StepReturn:
        self.turn += 1
        if isinstance(action, Message):
            action = {"content": action.content, "tool_calls": action.tool_calls}
        elif isinstance(action, str):
            action = {"content": action}
        payload = action if self.cfg.action_field is None else {
            self.cfg.action_field: action.get("content", "")
        }  # fmt: skip
        data = await self._send("step", json.loads(json.dumps(payload, default=plain)))
        obs, info = self._read(data)
        raw = data.get("observation") or {}
        done = bool(data.get("done"))
        terminated = bool(raw.get("terminated", done))
        truncated = bool(raw.get("truncated", False)) or (not terminated and done)
        if "action" in info:
            info["action"] = Message.model_validate(info["action"])
        return obs, float(data.get("reward") or 0.0), terminated, truncated, info

    async def arelease(self) -> None:
        """Say goodbye and close; a server that died or froze does not make this raise."""
        import asyncio
        import contextlib

        if self._ws is not None:
            ws, self._ws = self._ws, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.send(json.dumps({"type": "close"})), 5)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 5)
