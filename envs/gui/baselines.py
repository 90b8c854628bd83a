"""Scripted baselines of ``gui``: the oracle follows the task's plan through the action tools
(finding each element's id by role and name in the latest tree); the random clicker clicks
random ids and finishes with no answer."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from agentgym.types import Message


def call(name: str, **arguments: Any) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def find(tree: str, role: str, name: str) -> int:
    m = re.search(rf'^\[(\d+)\] {re.escape(role)} "{re.escape(name)}"', tree, re.M)
    if m is None:
        raise LookupError(f'no {role} "{name}" in the tree')
    return int(m.group(1))


def _tree(messages: list[Message]) -> str:
    """The latest page tree (a screenshot may follow it in a user message of its own)."""
    return next((m.content for m in reversed(messages) if m.content), "")


def oracle(messages: list[Message], info: dict[str, Any], rng: np.random.Generator) -> str:
    step = info["plan"][sum(m.role == "assistant" for m in messages)]
    tree = _tree(messages)
    kind = step[0]
    if kind == "finish":
        return call("finish", answer=step[1])
    id = find(tree, step[1], step[2])
    if kind == "click":
        return call("click", id=id)
    if kind == "type":
        return call("type", id=id, text=step[3])
    return call("select", id=id, option=step[3])


def random_clicker(messages: list[Message], info: dict[str, Any], rng: np.random.Generator) -> str:
    if sum(m.role == "assistant" for m in messages) >= 6:
        return call("finish", answer="")
    ids = [int(x) for x in re.findall(r"^\[(\d+)\]", _tree(messages), re.M)]
    return call("click", id=int(rng.choice(ids))) if ids else call("finish", answer="")


BASELINES = {"oracle": oracle, "random": random_clicker}


def action_oracle(messages: list[Message], info: dict[str, Any], rng: np.random.Generator) -> str:
    """gui_action: the gold type at the centre of the gold box."""
    box = info["box"] or [0, 0, 0, 0]
    x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    action = {"action_type": info["action_type"], "x": x, "y": y, "text": info["text"]}
    return f"<action>{json.dumps(action)}</action>"


def action_random(messages: list[Message], info: dict[str, Any], rng: np.random.Generator) -> str:
    """gui_action: a random type at a random point."""
    kind = str(rng.choice(["click", "input_text", "select", "scroll", "finish"]))
    action = {"action_type": kind, "x": int(rng.integers(1024)), "y": int(rng.integers(768))}
    return f"<action>{json.dumps(action)}</action>"


ACTION_BASELINES = {"oracle": action_oracle, "random": action_random}
