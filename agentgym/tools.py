"""Tools: typed Python functions the model may call.

``@tool`` reads a function's signature and Google-style docstring and builds the OpenAI-style
JSON schema the model sees; calls are validated against that schema before the function runs::

    @tool
    def search(query: str, k: int = 5) -> str:
        '''Search the index.

        Args:
            query: What to look for.
            k: How many results.
        '''

Works on plain functions, async functions and methods of an environment class (where it binds
to the instance). A wrong call raises ``ToolError`` with a message written for the model.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from agentgym.errors import ToolError
from agentgym.types import Message, ToolSpec

_ARG_LINE = re.compile(r"^ {2,4}(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into (summary, {arg: description})."""
    summary_lines: list[str] = []
    args: dict[str, str] = {}
    section, current = "summary", ""
    for line in inspect.cleandoc(doc).splitlines():
        stripped = line.strip()
        if stripped.endswith(":") and stripped[:-1] in {"Args", "Arguments", "Returns", "Raises"}:
            section = stripped[:-1]
            continue
        if section == "summary":
            summary_lines.append(stripped)
        elif section in {"Args", "Arguments"}:
            match = _ARG_LINE.match(line)
            if match:
                current = match.group(1)
                args[current] = match.group(2).strip()
            elif current and stripped:
                args[current] = f"{args[current]} {stripped}".strip()
    return " ".join(s for s in summary_lines if s).strip(), args


def _is_text(value: str) -> bool:
    """No NUL byte (shells and files stop there) and encodable as UTF-8 (no lone surrogate)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Tool:
    """A function exposed to the model. Build one with ``@tool``."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        params = list(inspect.signature(fn).parameters.values())
        self._takes_self = bool(params) and params[0].name == "self"
        if self._takes_self:
            params = params[1:]
        hints = get_type_hints(fn)
        summary, arg_docs = _parse_docstring(fn.__doc__ or "")
        fields: dict[str, Any] = {}
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(
                    f"tool '{self.name}': *args/**kwargs cannot be described to a model"
                )
            default = ... if p.default is inspect.Parameter.empty else p.default
            fields[p.name] = (hints.get(p.name, Any), default)
        self.args_model: type[BaseModel] = create_model(
            f"{self.name}_args", __config__=ConfigDict(extra="forbid"), **fields
        )
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        for key, prop in schema.get("properties", {}).items():
            prop.pop("title", None)
            if key in arg_docs:
                prop["description"] = arg_docs[key]
        self.spec = ToolSpec(name=self.name, description=summary or self.name, parameters=schema)

    def validate(self, arguments: Any) -> dict[str, Any]:
        """Check ``arguments`` against the schema; raise ``ToolError`` for the model if wrong."""
        if not isinstance(arguments, dict):
            raise ToolError(
                f"arguments of '{self.name}' must be a JSON object, got {type(arguments).__name__}"
            )
        try:
            model = self.args_model.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ToolError(f"invalid arguments for '{self.name}': {problems}") from None
        values = {k: getattr(model, k) for k in type(model).model_fields}
        for key, value in values.items():
            if isinstance(value, str) and not _is_text(value):
                raise ToolError(
                    f"invalid arguments for '{self.name}': {key} holds a NUL byte or a lone "
                    "surrogate escape (not text)"
                )
        return values

    async def run(self, owner: object | None, kwargs: dict[str, Any]) -> str | Message:
        """Run on validated ``kwargs`` (awaiting if async); return the result as text, or as
        a ``Message`` when the tool returns one (text with images, e.g. a screenshot)."""
        args = (owner,) if self._takes_self else ()
        result = self.fn(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, str | Message):
            return result
        return json.dumps(result, default=str)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
    """Decorator: turn a typed function (sync or async) into a ``Tool``."""
    if fn is None:
        return lambda f: Tool(f, name=name)
    return Tool(fn, name=name)


def collect_tools(obj: object) -> dict[str, Tool]:
    """The ``Tool``s defined on ``obj``'s class (and its bases), by name."""
    found: dict[str, Tool] = {}
    for klass in reversed(type(obj).__mro__):
        for value in vars(klass).values():
            if isinstance(value, Tool):
                found[value.name] = value
    return found
