"""Scripted baselines of ``swe``: the oracle applies the gold patch through the same tools
(``bash`` with ``git apply``, then ``submit``) or as the reply in patch mode; the no-op
submits the repository untouched."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from agentgym.types import Message


def call(name: str, **arguments: Any) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def _patch_mode(messages: list[Message]) -> bool:
    return "```diff block" in messages[0].content


def oracle(messages: list[Message], info: dict[str, Any], rng: np.random.Generator) -> str:
    patch = str(info["patch"])
    if _patch_mode(messages):
        return f"```diff\n{patch}```"
    apply = f"git apply - <<'AGENTGYM_EOF'\n{patch}AGENTGYM_EOF"
    return call("bash", command=apply) + call("submit")


def editor(messages: list[Message], info: dict[str, Any], rng: np.random.Generator) -> str:
    """The fix through the edit tool (generated tasks know it as exact replacements), then
    submit: the teacher of a cold start (difficulty 0's issue names the same edit)."""
    if any(m.role == "tool" for m in messages):
        return call("submit")
    edits = [call("edit", path=p, old=old, new=new) for p, old, new in info["edits"]]
    return "".join(edits) if edits else oracle(messages, info, rng)


def noop(messages: list[Message], info: dict[str, Any], rng: np.random.Generator) -> str:
    return "```diff\n```" if _patch_mode(messages) else call("submit")


BASELINES = {"oracle": oracle, "editor": editor, "noop": noop}
