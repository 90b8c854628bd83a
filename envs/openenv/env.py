"""``env=openenv env.url=URL``: an OpenEnv server's environment, played unmodified.

The episode goes through openenv-core's own client (``MCPToolClient``, over the server's
``/ws``): ``reset`` starts it (with the episode's seed; a held-out task's seed is offset by
``EVAL_SEED``, since OpenEnv has no split of its own), and the server's MCP tools (its
``list_tools``) become the model's tools, with the schemas the server gives: a call is a
``CallToolAction`` step, whose reward and ``done`` are the episode's (rewards summed; an
episode whose reward reaches ``success_reward`` succeeded). A tool's own error is an
observation for the model; arguments that do not fit the schema never reach the server. The
task the model reads is the reset observation's ``prompt_key`` field (by default the first of
``prompt``, ``instruction``, ``question``, ``task``, ``message``, ``text``; else the whole
observation as JSON). A reply with no tool call ends the episode, as in any AgentEnv.

``env.command=[...]`` starts the server for the run (once per process, whatever the number of
environments; stopped when the last one closes) and waits for its ``/health``. A server that
is not there fails before any episode (``preflight``), naming the URL; a server that stops
answering mid-episode is an infrastructure fault (``EnvError``), not the model's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import threading
import time
from typing import Any

from pydantic import Field, model_validator

from agentgym._imports import require
from agentgym.env import AgentEnv, AgentEnvConfig
from agentgym.errors import ConfigError, EnvError, ToolError
from agentgym.mcp import McpTool
from agentgym.types import Message

EVAL_SEED = 1_000_000
"""Held-out tasks reset with ``EVAL_SEED + seed``: train and eval seeds never meet."""
PROMPT_KEYS = ("prompt", "instruction", "question", "task", "message", "text")


class OpenEnvConfig(AgentEnvConfig):
    """``env.*`` keys of ``openenv``."""

    url: str = Field(description="the OpenEnv server (http:// or ws://; its /ws is played)")
    command: tuple[str, ...] | None = Field(
        None, description="argv that starts the server for the run (it must listen at url)"
    )
    start_timeout_s: float = Field(
        60.0, gt=0, description="seconds a started server may take to answer /health"
    )
    timeout_s: float = Field(60.0, gt=0, description="seconds a reset or a tool call may take")
    prompt_key: str | None = Field(
        None, description="the reset observation's field that holds the task (None: guess)"
    )
    success_reward: float = Field(1.0, description="an episode whose reward reaches it succeeded")
    max_turns: int = Field(10, ge=1, description="assistant turns before the episode is cut")

    @model_validator(mode="after")
    def _http(self) -> OpenEnvConfig:
        if not self.url.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError(f"url {self.url!r}: expected http(s):// or ws(s)://HOST:PORT")
        return self


class OpenEnvEnv(AgentEnv):
    """An OpenEnv server's environment (MCP tool-calling), through openenv-core's client."""

    config_model = OpenEnvConfig
    cfg: OpenEnvConfig

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.client: Any = None
        self.total = 0.0
        self._server = False  # whether this env holds a share of the command's server

    @classmethod
    def preflight(cls, config: dict[str, Any]) -> None:
        """Nothing listens at ``url`` and no ``command`` starts a server: refuse now."""
        cfg = OpenEnvConfig(**config)
        if cfg.command is not None:
            if shutil.which(cfg.command[0]) is None:
                what = f"{cfg.command[0]!r} is not a program here"
                raise ConfigError("env.command", what, "give the argv that starts the server")
            return
        if not _healthy(cfg.url, 5.0):
            raise ConfigError(
                "env.url",
                f"no OpenEnv server answers at {cfg.url} (GET /health)",
                "start it (e.g. `uvicorn server.app:app --port 8000`), or give env.command=[...] "
                "to start it for the run",
            )

    async def atask(self, options: dict[str, Any]) -> tuple[list[Message], dict[str, Any]]:
        if self.client is None:
            await self._connect()
        seed = self.task_seed or 0
        seed += EVAL_SEED if self.split == "eval" else 0
        result = await self._within(self.client.reset(seed=seed, split=self.split), "reset")
        shown = dict(self.client.last_observation)
        if not self.tools:  # the server's tools, once per connection
            listed = await self._within(self.client.list_tools(use_cache=False), "list_tools")
            for t in listed:
                self.tools[t.name] = McpTool(self, t.name, t.description or t.name, t.input_schema)
        self.total = 0.0
        if result.done:
            self.end(success=False)
        return [Message(role="user", content=self._prompt(shown))], {"seed": seed}

    async def call(self, name: str, arguments: dict[str, Any]) -> str:
        """One tool call as a ``CallToolAction`` step (what ``McpTool.run`` calls)."""
        mcp_types = require("openenv.core.env_server.mcp_types", "formats")
        action = mcp_types.CallToolAction(tool_name=name, arguments=arguments)
        result = await self._within(self.client.step(action), name)
        if result.reward:
            self.add_reward("env", float(result.reward))
            self.total += float(result.reward)
        if result.done:
            self.end(success=self.total >= self.cfg.success_reward)
        obs = result.observation
        if getattr(obs, "error", None) is not None:
            raise ToolError(f"'{name}' failed: {obs.error.message}")
        return _text(getattr(obs, "result", None))

    async def arelease(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):  # a server already gone
                await asyncio.wait_for(client.close(), 10)
        if self._server:
            self._server = False
            await asyncio.to_thread(_SERVERS.release, self.cfg)

    async def _connect(self) -> None:
        if not self._server:
            await asyncio.to_thread(_SERVERS.acquire, self.cfg)
            self._server = True
        self.client = _client_class()(self.cfg.url, message_timeout_s=self.cfg.timeout_s)
        await self._within(self.client.connect(), "connect")

    async def _within(self, call: Any, what: str) -> Any:
        """``call`` within ``timeout_s``; a dead or frozen server is an ``EnvError``."""
        try:
            return await asyncio.wait_for(call, self.cfg.timeout_s)
        except Exception as exc:  # the server's side: closed, refused, an error reply
            cause = "no answer in time" if isinstance(exc, TimeoutError) else repr(exc)[:300]
            where = f"the OpenEnv server at {self.cfg.url}: {cause}"
            raise EnvError(self.env_id, self.turn, what, where) from exc

    def _prompt(self, seen: dict[str, Any]) -> str:
        """The task: the reset observation's ``prompt_key`` field (or a guess of it)."""
        keys = [self.cfg.prompt_key] if self.cfg.prompt_key else list(PROMPT_KEYS)
        for key in keys:
            if isinstance(seen.get(key), str) and seen[key]:
                return str(seen[key])
        return json.dumps(seen, default=str)


def _client_class() -> type:
    """openenv-core's ``MCPToolClient``, keeping each reset's observation as it came (its own
    parse keeps only the metadata of an observation that is not a tool's)."""
    base = require("openenv.core.mcp_client", "formats").MCPToolClient

    class Client(base):  # type: ignore[misc, valid-type]
        last_observation: dict[str, Any] = {}

        def _parse_result(self, payload: dict[str, Any]) -> Any:
            self.last_observation = dict(payload.get("observation") or {})
            return super()._parse_result(payload)

    return Client


def _text(result: Any) -> str:
    """A tool result as text: its text content blocks, its data, or the value itself."""
    if isinstance(result, dict) and isinstance(result.get("content"), list):
        texts = [str(b.get("text", "")) for b in result["content"] if isinstance(b, dict)]
        if any(texts):
            return "\n".join(texts)
        result = result.get("data", result)
    if hasattr(result, "content"):
        return "\n".join(str(getattr(b, "text", "")) for b in result.content)
    return result if isinstance(result, str) else json.dumps(result, default=str)


def _healthy(url: str, timeout: float) -> bool:
    httpx = require("httpx", "formats")
    base = url.replace("ws://", "http://").replace("wss://", "https://").rstrip("/")
    base = base.removesuffix("/ws")
    try:
        return httpx.get(f"{base}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


class _Servers:
    """The servers ``command`` started in this process, shared by its environments."""

    def __init__(self) -> None:
        self.running: dict[tuple[str, ...], tuple[subprocess.Popen[bytes], int]] = {}
        self.lock = threading.Lock()  # environments connect from threads, at once

    def acquire(self, cfg: OpenEnvConfig) -> None:
        if cfg.command is None:
            return
        with self.lock:
            self._acquire(cfg, cfg.command)

    def release(self, cfg: OpenEnvConfig) -> None:
        if cfg.command is None:
            return
        with self.lock:
            self._release(cfg.command)

    def _acquire(self, cfg: OpenEnvConfig, command: tuple[str, ...]) -> None:
        if command in self.running:
            proc, users = self.running[command]
            self.running[command] = (proc, users + 1)
            return
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + cfg.start_timeout_s
        while not _healthy(cfg.url, 2.0):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                err = (proc.communicate()[1] or b"").decode(errors="replace")[-1500:]
                what = f"{' '.join(command)} did not answer at {cfg.url}: {err}"
                raise EnvError("openenv", 0, "command", what)
            time.sleep(0.2)
        self.running[command] = (proc, 1)

    def _release(self, command: tuple[str, ...]) -> None:
        if command not in self.running:
            return
        proc, users = self.running[command]
        if users > 1:
            self.running[command] = (proc, users - 1)
            return
        del self.running[command]
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_SERVERS = _Servers()
