"""Environments over a WebSocket, in the message shape OpenEnv's clients speak.

``agentgym serve env env=guess_number port=8000`` serves any registered environment at
``ws://HOST:PORT/ws``: each connection gets its own environment instance, and every message is
JSON ``{"type": ..., "data": ...}``:

* ``{"type": "reset", "data": {"seed": 3, "options": {...}}}`` and
  ``{"type": "step", "data": {"content": "...", "tool_calls": [...]}}`` (the assistant's
  message) answer ``{"type": "observation", "data": {"observation": {"messages": [...],
  "tools": [...], "info": {...}, "terminated": bool, "truncated": bool}, "reward": r,
  "done": bool}}``;
* ``{"type": "state"}`` answers ``{"type": "state", "data": {"env_id", "turn", "messages"}}``;
* ``{"type": "close"}`` ends the session; a bad message answers ``{"type": "error", "data":
  {"message", "code"}}`` and the session goes on.

``GET /health`` answers ``{"status": "healthy"}``. The remote side is ``RemoteEnv``
(``agentgym eval env=remote env.url=ws://...``), which also drives other servers of this shape.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agentgym._imports import require
from agentgym.asyncenv import AsyncEnv
from agentgym.errors import AgentGymError
from agentgym.types import Message


@dataclass
class Session:
    """One connection: its environment and the conversation so far (what ``state`` shows)."""

    env: AsyncEnv
    messages: list[Message] = field(default_factory=list)


def _observation(obs: Any, info: dict[str, Any], reward: Any, end: tuple[bool, bool]) -> Any:
    return {
        "type": "observation",
        "data": {
            "observation": {
                "messages": [m.model_dump(mode="json") for m in obs.messages],
                "tools": [t.model_dump(mode="json") for t in obs.tools],
                "info": json.loads(json.dumps(info, default=plain)),
                "terminated": end[0],
                "truncated": end[1],
            },
            "reward": reward,
            "done": end[0] or end[1],
        },
    }


async def answer(session: Session, message: dict[str, Any]) -> dict[str, Any] | None:
    """The reply to one client message (None: the client closed the session)."""
    kind, data, env = message.get("type"), message.get("data") or {}, session.env
    if kind == "reset":
        obs, info = await env.areset(seed=data.get("seed"), options=data.get("options"))
        session.messages = list(obs.messages)
        return _observation(obs, info, None, (False, False))
    if kind == "step":
        obs, reward, terminated, truncated, info = await env.astep(data)
        said = info.get("action")
        session.messages += [*([said] if isinstance(said, Message) else []), *obs.messages]
        return _observation(obs, info, reward, (terminated, truncated))
    if kind == "state":
        messages = [m.model_dump(mode="json") for m in session.messages]
        return {
            "type": "state",
            "data": {"env_id": env.env_id, "turn": env.turn, "messages": messages},
        }
    if kind == "close":
        return None
    return _error(f"unknown message type {kind!r}: reset, step, state or close", "UNKNOWN_TYPE")


def plain(value: Any) -> Any:
    """JSON for what ``json`` cannot write itself (a pydantic model: its fields)."""
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else str(value)


def _error(message: str, code: str) -> dict[str, Any]:
    return {"type": "error", "data": {"message": message[:2000], "code": code}}


def make_app(env_id: str, kwargs: dict[str, Any]) -> Any:
    """The ASGI app serving ``env_id`` built with ``kwargs``."""
    fastapi = require("fastapi", "retrieval")
    from agentgym.registration import make

    app = fastapi.FastAPI(title=f"agentgym {env_id}")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "healthy"}

    async def session(ws: Any) -> None:
        await ws.accept()
        env = make(env_id, **kwargs)
        state = Session(env)
        try:
            while True:
                try:
                    reply = await answer(state, json.loads(await ws.receive_text()))
                except json.JSONDecodeError as exc:
                    reply = _error(f"invalid JSON: {exc}", "INVALID_JSON")
                except (AgentGymError, ValueError, TypeError) as exc:
                    reply = _error(f"{type(exc).__name__}: {exc}", "EXECUTION_ERROR")
                if reply is None:
                    break
                await ws.send_text(json.dumps(reply))
        except fastapi.WebSocketDisconnect:
            pass
        finally:
            await env.aclose()

    session.__annotations__["ws"] = fastapi.WebSocket  # FastAPI injects by the real class
    app.websocket("/ws")(session)
    return app


def serve(env_id: str, kwargs: dict[str, Any], host: str, port: int) -> None:
    """Serve until interrupted."""
    uvicorn = require("uvicorn", "retrieval")
    uvicorn.run(make_app(env_id, kwargs), host=host, port=port, log_level="warning")
