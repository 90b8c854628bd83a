"""The gateway: an OpenAI-compatible HTTP server in front of one of agentgym's token-level
policies (the in-process vLLM engine, the Ray engines, hf), for agents that are programs.

Each episode gets its own address, ``http://HOST:PORT/e/<token>/v1`` (the token also works as
the API key against ``/v1``), so the concurrent episodes of a group never mix. Endpoints:
``/chat/completions`` (``tools`` in, native ``tool_calls`` out, parsed from the model's text by
the envs' own parser; ``stream: true`` answered as OpenAI streams), ``/completions`` and
``/models``; ``/e/<token>/tools/<name>`` runs a tool the episode's environment exposed.

Every call is rendered by the model's chat template into ids, sampled by the policy (at the
policy's own sampling settings: the request's temperature does not change what is trained),
and recorded with its ids, log-probs and policy version (``capture.py``). A request's
``max_tokens`` is capped at the policy's ``max_new_tokens``; a malformed request is an
OpenAI-shaped 400; an episode past ``max_calls`` calls gets 429 and is failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from agentgym._imports import require
from agentgym.gateway.capture import Call, EpisodeRecord
from agentgym.parsing import parse_hermes
from agentgym.types import Message, ToolSpec

ToolHandler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
"""Runs an env tool for a program: ``{"result": text, "ended": whether the episode ended}``."""


@dataclass
class Episode:
    """One episode's address and what it did."""

    token: str
    seed: int
    base_url: str
    record: EpisodeRecord = field(default_factory=EpisodeRecord)
    tools: ToolHandler | None = None
    tool_specs: list[dict[str, Any]] = field(default_factory=list)
    failed: str | None = None
    """Why the episode cannot count (a flood of calls), if it cannot."""

    @property
    def tools_url(self) -> str:
        return self.base_url.removesuffix("/v1") + "/tools"

    def expose(self, handler: ToolHandler, specs: list[dict[str, Any]]) -> None:
        """Serve the environment's tools to the program: ``GET tools_url`` lists them (OpenAI
        format), ``POST tools_url/<name>`` runs one."""
        self.tools, self.tool_specs = handler, specs


class _Quiet(Exception):
    """A request the gateway answers with an OpenAI-shaped error."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.kind = status, kind


class Gateway:
    """The server (see the module docstring) in front of ``policy``, on this event loop.

    Args:
        policy: A token-level policy (``TokenPolicy``: ``renderer``, ``generate``).
        host: Where to listen.
        max_calls: Model calls an episode may make.
        model_name: What ``/models`` names the model.
        open_keys: Serving alone (``agentgym serve policy``): an unknown API key opens an
            episode of its own.
    """

    def __init__(
        self,
        policy: Any,
        host: str = "127.0.0.1",
        max_calls: int = 64,
        model_name: str = "agentgym",
        open_keys: bool = False,
    ) -> None:
        self.policy, self.host, self.max_calls = policy, host, max_calls
        self.model_name, self.open_keys = model_name, open_keys
        self.episodes: dict[str, Episode] = {}
        self.url = ""
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def of(cls, policy: Any) -> Gateway:
        """The gateway of ``policy`` on this loop (started on first use)."""
        lock = policy.__dict__.setdefault("_gateway_lock", asyncio.Lock())
        async with lock:  # concurrent episodes share one
            gateway = policy.__dict__.get("_gateway")
            if gateway is None or gateway._task is None or gateway._task.done():
                gateway = policy.__dict__["_gateway"] = cls(policy)
                await gateway.start()
        return gateway

    async def start(self, port: int = 0) -> None:
        uvicorn = require("uvicorn", "harness")

        class Server(uvicorn.Server):  # type: ignore[name-defined]
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:  # the run's own handlers stay
                yield

        config = uvicorn.Config(
            self.app(), host=self.host, port=port, log_level="warning", lifespan="off"
        )
        self._server = Server(config)
        self._task = asyncio.create_task(self._server.serve())
        deadline = time.monotonic() + 30
        while not self._server.started:
            if self._task.done() or time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not start on {self.host}:{port}")
            await asyncio.sleep(0.01)
        bound = self._server.servers[0].sockets[0].getsockname()
        self.url = f"http://{self.host}:{bound[1]}"

    async def aclose(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, 10)

    def open(self, seed: int) -> Episode:
        """A new episode's address."""
        token = secrets.token_urlsafe(12)
        episode = Episode(token, seed, f"{self.url}/e/{token}/v1")
        self.episodes[token] = episode
        return episode

    def close(self, episode: Episode) -> EpisodeRecord:
        """Forget ``episode`` (its address answers 404 from now on); its record."""
        self.episodes.pop(episode.token, None)
        return episode.record

    # ---- the HTTP side ---------------------------------------------------------------------

    def app(self) -> Any:
        fastapi = require("fastapi", "harness")
        from fastapi.responses import JSONResponse, StreamingResponse

        app = fastapi.FastAPI(title="agentgym gateway")

        async def handle(request: Any, token: str | None, kind: str) -> Any:
            try:
                episode = self._episode(request, token)
                if kind == "models":
                    return JSONResponse(self._models())
                body = await _body(request)
                answer = await (self._chat if kind == "chat" else self._completion)(episode, body)
                if body.get("stream") is True:
                    return StreamingResponse(_stream(answer), media_type="text/event-stream")
                return JSONResponse(answer)
            except _Quiet as exc:
                error = {"message": str(exc), "type": exc.kind, "code": exc.status}
                return JSONResponse({"error": error}, status_code=exc.status)

        def route(kind: str) -> Any:
            async def answer(request: Any, token: str | None = None) -> Any:
                return await handle(request, token, kind)

            answer.__annotations__ = {"request": fastapi.Request, "token": str | None}
            return answer

        for prefix in ("/e/{token}/v1", "/v1"):
            app.post(prefix + "/chat/completions")(route("chat"))
            app.post(prefix + "/completions")(route("text"))
            app.get(prefix + "/models")(route("models"))

        async def tool(token: str, name: str, request: Any) -> Any:
            episode = self.episodes.get(token)
            if episode is None or episode.tools is None:
                return JSONResponse({"error": "no such episode or tools"}, status_code=404)
            try:
                args = await _body(request)
            except _Quiet as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(await episode.tools(name, args))

        async def listing(token: str) -> Any:
            episode = self.episodes.get(token)
            if episode is None or episode.tools is None:
                return JSONResponse({"error": "no such episode or tools"}, status_code=404)
            return JSONResponse({"tools": episode.tool_specs})

        tool.__annotations__ = {"token": str, "name": str, "request": fastapi.Request}
        app.post("/e/{token}/tools/{name}")(tool)
        app.get("/e/{token}/tools")(listing)
        return app

    def _episode(self, request: Any, token: str | None) -> Episode:
        if token is None:  # /v1/...: the API key names the episode
            token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        episode = self.episodes.get(token or "")
        if episode is None and self.open_keys and token:
            episode = self.episodes[token] = Episode(token, len(self.episodes), f"{self.url}/v1")
            episode.record.calls = _Recent()  # serving alone: keep only the latest calls
        if episode is None:
            raise _Quiet(404, "no such episode: its address or API key is unknown or closed")
        return episode

    def _models(self) -> dict[str, Any]:
        entry = {"id": self.model_name, "object": "model", "owned_by": "agentgym"}
        return {"object": "list", "data": [entry]}

    # ---- sampling --------------------------------------------------------------------------

    async def _sample(self, episode: Episode, prompt: list[int], body: dict[str, Any]) -> Any:
        if len(episode.record.calls) >= self.max_calls:
            episode.failed = f"more than {self.max_calls} model calls"
            raise _Quiet(429, f"this episode made its {self.max_calls} calls", "rate_limit")
        asked = body.get("max_completion_tokens", body.get("max_tokens"))
        limit = self.policy.sampling.max_new_tokens
        if asked is not None:
            if not isinstance(asked, int) or isinstance(asked, bool) or asked < 1:
                raise _Quiet(400, f"max_tokens must be a positive integer, got {asked!r}")
            limit = min(limit, asked)
        seed = episode.seed * 1009 + len(episode.record.calls)
        t0 = time.perf_counter()
        async with self.policy.gate.sampling():  # one version of the weights for the call
            version = self.policy.version
            sample = await self.policy.generate(prompt, limit, seed)
        episode.record.model_seconds += time.perf_counter() - t0
        return sample, version

    async def _chat(self, episode: Episode, body: dict[str, Any]) -> dict[str, Any]:
        try:
            messages = [Message.model_validate(m) for m in _list(body, "messages")]
            tools = [ToolSpec.model_validate(t) for t in body.get("tools") or []]
        except ValidationError as exc:
            raise _Quiet(400, f"malformed messages or tools: {exc.errors()[0]['msg']}") from None
        if not messages:
            raise _Quiet(400, "messages is empty")
        episode.record.check_history(messages)
        prompt = self._prompt(episode.record, messages, tools)
        sample, version = await self._sample(episode, prompt, body)
        parsed = parse_hermes(sample.text) if tools else None
        calls = parsed.calls if parsed is not None else []
        calls = [c.model_copy(update={"id": f"call_{secrets.token_hex(6)}"}) for c in calls]
        content = parsed.content if calls and parsed is not None else sample.text.strip()
        message = Message(role="assistant", content=content, tool_calls=calls)
        request = episode.record.request_print(messages, tools)
        episode.record.calls.append(
            Call(prompt, sample.token_ids, sample.logprobs, version, message, request)
        )
        finish = (
            "tool_calls" if calls else ("length" if sample.finish_reason == "length" else "stop")
        )
        reply: dict[str, Any] = {"role": "assistant", "content": content or None}
        if calls:
            reply["tool_calls"] = [c.to_openai() for c in calls]
        return self._envelope("chat.completion", {"index": 0, "message": reply,
                              "finish_reason": finish}, prompt, sample)  # fmt: skip

    def _prompt(
        self, record: EpisodeRecord, messages: list[Message], tools: list[ToolSpec]
    ) -> list[int]:
        """The request's prompt ids: appended to the call it continues, else rendered whole."""
        renderer = self.policy.renderer
        if (found := record.continued(messages, tools)) is not None:
            call, n = found
            with contextlib.suppress(ValueError):  # a template that re-renders the past
                tail = renderer.continuation_ids(call.completion_ids, messages[n:])
                return call.prompt_ids + call.completion_ids + tail
        return renderer.prompt_ids(messages, tools)

    async def _completion(self, episode: Episode, body: dict[str, Any]) -> dict[str, Any]:
        prompt = body.get("prompt")
        if isinstance(prompt, str):
            ids = self.policy.renderer.encode(prompt)
        elif isinstance(prompt, list) and prompt and all(isinstance(i, int) for i in prompt):
            ids = list(prompt)
        else:
            raise _Quiet(400, "prompt must be a string or a list of token ids")
        sample, version = await self._sample(episode, ids, body)
        message = Message(role="assistant", content=sample.text)
        episode.record.calls.append(Call(ids, sample.token_ids, sample.logprobs, version, message))
        finish = "length" if sample.finish_reason == "length" else "stop"
        choice = {"index": 0, "text": sample.text, "finish_reason": finish}
        return self._envelope("text_completion", choice, ids, sample)

    def _envelope(
        self, kind: str, choice: dict[str, Any], prompt: list[int], sample: Any
    ) -> dict[str, Any]:
        usage = {"prompt_tokens": len(prompt), "completion_tokens": len(sample.token_ids)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return {"id": f"agcmpl-{secrets.token_hex(8)}", "object": kind, "created": int(time.time()),
                "model": self.model_name, "choices": [choice], "usage": usage}  # fmt: skip


class _Recent(list[Call]):
    """A call list that keeps its last 16 (a served policy records for no one)."""

    def append(self, call: Call) -> None:
        super().append(call)
        del self[:-16]


async def _body(request: Any) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > 8 << 20:
        raise _Quiet(413, "the request is larger than 8 MB")
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise _Quiet(400, f"the body is not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise _Quiet(400, "the body must be a JSON object")
    return body


def _list(body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if not isinstance(value, list):
        raise _Quiet(400, f"{key} must be a list")
    return value


async def _stream(answer: dict[str, Any]) -> Any:
    """``answer`` as OpenAI's server-sent events: the role and content, the tool calls, the
    finish reason, then ``[DONE]``."""
    kind = "chat.completion.chunk" if answer["object"] == "chat.completion" else answer["object"]
    head = {k: answer[k] for k in ("id", "created", "model")} | {"object": kind}
    choice = answer["choices"][0]
    if kind == "text_completion":
        yield f"data: {json.dumps(head | {'choices': [choice]})}\n\n"
    else:
        message = choice["message"]
        deltas = [{"role": "assistant", "content": message.get("content") or ""}]
        deltas += [
            {"tool_calls": [{"index": i, **c}]} for i, c in enumerate(message.get("tool_calls", []))
        ]
        for delta in deltas:
            chunk = head | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n"
        last = {"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}
        yield f"data: {json.dumps(head | {'choices': [last], 'usage': answer['usage']})}\n\n"
    yield "data: [DONE]\n\n"
