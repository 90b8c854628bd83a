"""MCP servers' tools as environment tools (``mcp_servers=`` on any environment).

    agentgym eval env=deep_research 'env.mcp_servers=[{command: [python, -m, my_server]}]'
    agentgym.make("guess_number", mcp_servers=[{"url": "http://localhost:8000/mcp"}])

Each server (a command spoken to over stdio, or a streamable-HTTP URL) is started at the
environment's first reset; its tools join the environment's own, with the schemas the server
gives, and follow the same contract: arguments are checked against the schema before the call
(a mismatch is an error observation for the model), a tool's own error (``isError``) and a
call past the server's ``timeout`` come back as error observations, and the per-turn call cap
and time budget apply. A server that cannot start is an infrastructure fault (``EnvError``).
Needs the ``mcp`` package (``pip install agentgym[mcp]``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentgym._imports import require
from agentgym.errors import EnvError, ToolError
from agentgym.tools import Tool, _is_text
from agentgym.types import ToolSpec


class McpServerConfig(BaseModel):
    """One MCP server: ``command`` (stdio) or ``url`` (streamable HTTP)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: tuple[str, ...] | None = Field(None, description="argv of a stdio server")
    url: str | None = Field(None, description="a streamable-HTTP endpoint (…/mcp)")
    env: dict[str, str] | None = Field(None, description="environment of a stdio server")
    timeout: float = Field(30.0, gt=0.0, description="seconds a call may take")

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError("give command (a stdio server's argv) or url, not both or neither")
        return self

    def __hash__(self) -> int:  # an env config holding it may be a cache key
        return hash(self.model_dump_json())


class McpServer:
    """A running connection: one task owns the client (MCP's transports must be entered and
    left in one task); calls are made from any task."""

    def __init__(self, cfg: McpServerConfig) -> None:
        self.cfg = cfg
        self.client: Any = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._broken = False

    async def start(self) -> list[McpTool]:
        """Connect and list the server's tools."""
        ready: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._own(ready))
        listed = await ready
        return [McpTool(self, t.name, t.description or t.name, t.input_schema) for t in listed]

    async def _own(self, ready: asyncio.Future[list[Any]]) -> None:
        mcp = require("mcp", "mcp")
        from mcp.client.stdio import StdioServerParameters

        cfg = self.cfg
        target: Any = cfg.url
        if cfg.command is not None:
            target = StdioServerParameters(
                command=cfg.command[0], args=list(cfg.command[1:]), env=cfg.env
            )
        try:
            async with mcp.Client(target) as client:
                self.client = client
                ready.set_result(list((await client.list_tools()).tools))
                await self._stop.wait()
        except Exception as exc:
            if not ready.done():
                ready.set_exception(exc)
        finally:
            self.client = None

    @property
    def alive(self) -> bool:
        """Whether the connection is still up: the owning task holds a client (it drops it
        when it ends) and no call found the server gone."""
        return self.client is not None and not self._broken

    async def call(self, name: str, arguments: dict[str, Any]) -> str:
        """The text of a call's result.

        Raises:
            ToolError: (for the model) the tool failed or took longer than ``timeout``.
            ConnectionError: the server is gone (it exited or crashed): not the model's fault.
        """
        if not self.alive:
            raise ConnectionError(self._gone(name, "it is not running"))
        try:
            result = await asyncio.wait_for(
                self.client.call_tool(name, arguments), self.cfg.timeout
            )
        except TimeoutError:
            raise ToolError(f"'{name}' took longer than {self.cfg.timeout:g} s") from None
        except Exception as exc:
            self._broken = True
            raise ConnectionError(self._gone(name, repr(exc))) from exc
        text = "\n".join(_text(block) for block in result.content)
        if result.is_error:
            raise ToolError(text or f"'{name}' failed")
        return text

    def _gone(self, name: str, cause: str) -> str:
        where = " ".join(self.cfg.command) if self.cfg.command else self.cfg.url
        return (
            f"the MCP server '{where}' is gone during '{name}' ({cause}): it exited or "
            "crashed; it restarts at the next reset, and a rerun plays this episode again"
        )

    async def aclose(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


def _text(block: Any) -> str:
    """A content block as text (a non-text block is named, not inlined)."""
    if getattr(block, "type", "") == "text":
        return str(block.text)
    return f"[{getattr(block, 'type', 'content')} content]"


class Caller(Protocol):
    """What calls a tool by name: an MCP server's connection, an OpenEnv session."""

    async def call(self, name: str, arguments: dict[str, Any]) -> str: ...


class McpTool(Tool):
    """A tool of an MCP server (or of an OpenEnv server's MCP tools), with the schema the
    server gave."""

    def __init__(self, server: Caller, name: str, description: str, schema: dict[str, Any]):
        self.server, self.name, self.schema = server, name, schema
        self._takes_self = False
        self.spec = ToolSpec(name=name, description=description, parameters=schema)

    def validate(self, arguments: Any) -> dict[str, Any]:
        jsonschema = require("jsonschema", "mcp")
        if not isinstance(arguments, dict):
            raise ToolError(
                f"arguments of '{self.name}' must be a JSON object, got {type(arguments).__name__}"
            )
        problem = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(self.schema).iter_errors(arguments)
        )
        if problem is not None:
            where = ".".join(str(p) for p in problem.absolute_path) or "arguments"
            raise ToolError(f"invalid arguments for '{self.name}': {where}: {problem.message}")
        for key, value in arguments.items():
            if isinstance(value, str) and not _is_text(value):
                raise ToolError(f"invalid arguments for '{self.name}': {key} is not text")
        return dict(arguments)

    async def run(self, owner: object | None, kwargs: dict[str, Any]) -> str:
        return await self.server.call(self.name, kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("an MCP tool is called through its environment")


async def start_servers(
    configs: Sequence[McpServerConfig], taken: set[str], env_id: str
) -> tuple[list[McpServer], dict[str, Tool]]:
    """Start ``configs``' servers for env ``env_id``; return them and their tools by name.

    Raises:
        EnvError: a server did not start, or offers a tool named as one in ``taken`` (or
            another server's): the model could not tell them apart. Servers started before
            the failure are stopped.
    """
    servers: list[McpServer] = []
    tools: dict[str, Tool] = {}
    try:
        for cfg in configs:
            server = McpServer(cfg)
            try:
                listed = await server.start()
            except Exception as exc:
                raise EnvError(env_id, 0, "mcp", f"{cfg} did not start: {exc!r}") from exc
            servers.append(server)
            for t in listed:
                if t.name in taken or t.name in tools:
                    clash = f"the MCP server {cfg} offers a tool the env already has"
                    raise EnvError(env_id, 0, t.name, clash)
                tools[t.name] = t
    except BaseException:
        for server in servers:
            await server.aclose()
        raise
    return servers, tools
