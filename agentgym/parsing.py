"""Tool calls in and out of text.

Formats:
    * Hermes / Qwen: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, any number of
      blocks per message, with free text around them.
    * Untagged JSON (``parse_untagged``, an env option): a message that is one JSON call
      object, bare or in a ```json fence, naming a known tool, as small instruct models write
      before they learn the tags.
    * OpenAI-native ``tool_calls`` from a chat-completions response (arguments as a JSON string).

Parsing never raises: every problem becomes a message in ``ParsedAction.errors`` that the
environment shows to the model.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from agentgym.types import Message, ToolCall

TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"


class ParsedAction(BaseModel):
    """An assistant message split into prose, tool calls and the problems found."""

    content: str
    calls: list[ToolCall] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    untagged: bool = False
    """The one call was read from untagged JSON (``parse_untagged``)."""


def _call_from_obj(obj: Any, where: str) -> ToolCall | str:
    """A ``ToolCall`` from a decoded JSON object, or an error message for the model."""
    if not isinstance(obj, dict):
        return f"{where}: expected a JSON object with 'name' and 'arguments', got {_kind(obj)}"
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return f"{where}: missing 'name' (a string naming the tool)"
    if not name.isprintable() or len(name) > 64:
        return f"{where}: {name[:64]!r} is not a tool name"
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = _loads(args) if args.strip() else {}
        except ValueError as exc:
            return f"{where}: 'arguments' of '{name}' is not valid JSON ({exc})"
    if not isinstance(args, dict):
        return f"{where}: 'arguments' of '{name}' must be a JSON object, got {_kind(args)}"
    try:  # a lone surrogate (the JSON escape of half an emoji) is valid JSON but not text
        json.dumps(args, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError, ValueError):
        return f"{where}: 'arguments' of '{name}' hold a lone surrogate escape or nest too deeply"
    return ToolCall(id=str(obj.get("id") or ""), name=name, arguments=args)


def _kind(obj: Any) -> str:
    names: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
    return names.get(type(obj), type(obj).__name__)


def _split_blocks(text: str) -> tuple[list[str], str, bool]:
    """The bodies of closed ``<tool_call>`` blocks, the text outside them, and whether a
    block was left open (the text after it is dropped). One pass: linear in ``len(text)``
    however many tags a degenerate sample repeats."""
    bodies: list[str] = []
    outside: list[str] = []
    pos = 0
    while (start := text.find(TOOL_CALL_OPEN, pos)) >= 0:
        end = text.find(TOOL_CALL_CLOSE, start + len(TOOL_CALL_OPEN))
        outside.append(text[pos:start])
        if end < 0:
            return bodies, "".join(outside), True
        bodies.append(text[start + len(TOOL_CALL_OPEN) : end])
        pos = end + len(TOOL_CALL_CLOSE)
    outside.append(text[pos:])
    return bodies, "".join(outside), False


def _loads(raw: str) -> Any:
    """``json.loads`` that raises only ``ValueError`` (deep nesting included)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def parse_hermes(text: str) -> ParsedAction:
    """Parse Hermes/Qwen ``<tool_call>`` blocks out of ``text``."""
    calls: list[ToolCall] = []
    errors: list[str] = []
    bodies, rest, unclosed = _split_blocks(text)
    for i, body in enumerate(bodies):
        where = f"tool call {i + 1}"
        try:
            obj = _loads(body)
        except ValueError as exc:
            errors.append(f"{where}: not valid JSON ({exc}); write {_EXAMPLE}")
            continue
        result = _call_from_obj(obj, where)
        (errors if isinstance(result, str) else calls).append(result)  # type: ignore[arg-type]
    if unclosed:
        errors.append(f"a '{TOOL_CALL_OPEN}' block is not closed with '{TOOL_CALL_CLOSE}'")
    elif TOOL_CALL_CLOSE in rest:
        errors.append(f"'{TOOL_CALL_CLOSE}' without a matching '{TOOL_CALL_OPEN}'")
    return ParsedAction(content=rest.strip(), calls=calls, errors=errors)


def parse_untagged(text: str, tools: set[str] | dict[str, Any]) -> ToolCall | None:
    """The call in ``text`` if the message is one JSON object (bare, or the first ```json
    fence) with a ``name`` among ``tools``; None otherwise (then it is prose)."""
    body = text.strip()
    start = body.find("```")
    if start >= 0:
        end = body.find("```", start + 3)
        body = body[start + 3 : end if end >= 0 else len(body)].removeprefix("json").strip()
    if not body.startswith("{"):
        return None
    try:
        obj = _loads(body)
    except ValueError:
        return None
    call = _call_from_obj(obj, "")
    return call if isinstance(call, ToolCall) and call.name in tools else None


_EXAMPLE = '<tool_call>{"name": "tool_name", "arguments": {"arg": "value"}}</tool_call>'


def parse_openai_tool_calls(tool_calls: Any, content: str | None = "") -> ParsedAction:
    """Parse the ``tool_calls`` of an OpenAI chat-completions message (anything the server
    sent: a non-list is one error, not a crash)."""
    calls: list[ToolCall] = []
    errors: list[str] = []
    if tool_calls is not None and not isinstance(tool_calls, list):
        return ParsedAction(
            content=str(content or "").strip(),
            errors=[f"'tool_calls' must be a list of calls, got {_kind(tool_calls)}"],
        )
    for i, raw in enumerate(tool_calls or []):
        fn = raw.get("function") if isinstance(raw, dict) else None
        if not isinstance(fn, dict):
            errors.append(f"tool call {i + 1}: missing 'function'")
            continue
        result = _call_from_obj({**fn, "id": raw.get("id", "")}, f"tool call {i + 1}")
        (errors if isinstance(result, str) else calls).append(result)  # type: ignore[arg-type]
    return ParsedAction(content=(content or "").strip(), calls=calls, errors=errors)


def render_tool_calls(calls: list[ToolCall]) -> str:
    """Hermes text for ``calls``: the inverse of ``parse_hermes``."""
    blocks = (json.dumps({"name": c.name, "arguments": c.arguments}) for c in calls)
    return "\n".join(f"{TOOL_CALL_OPEN}\n{b}\n{TOOL_CALL_CLOSE}" for b in blocks)


def read_action(
    action: Message | str | dict[str, Any], untagged_tools: set[str] | dict[str, Any] | None
) -> tuple[Message, ParsedAction]:
    """The assistant message and its reading, from any form of action: text with Hermes
    ``<tool_call>`` blocks (or, when ``untagged_tools`` is given, one untagged JSON call of
    those tools), a ``Message`` with parsed calls, or an OpenAI assistant message whose
    ``tool_calls`` are as the server sent them."""
    if isinstance(action, dict):
        parsed = parse_openai_tool_calls(action.get("tool_calls"), action.get("content"))
        message = Message(role="assistant", content=parsed.content)
        if parsed.calls or parsed.errors:
            return message, parsed
        action = message
    if isinstance(action, str):
        action = Message(role="assistant", content=action)
    if action.tool_calls:
        return action, ParsedAction(content=action.content, calls=list(action.tool_calls))
    parsed = parse_hermes(action.content)
    if untagged_tools and not parsed.calls and not parsed.errors:
        call = parse_untagged(parsed.content, untagged_tools)
        if call is not None:
            return action, ParsedAction(content="", calls=[call], untagged=True)
    return action, parsed
