"""Scripted baselines of ``gui``: the oracle follows the task's plan through the action tools
(finding each element's id by role and name in the latest tree); the random clicker clicks
random ids and finishes with no answer."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from agentgym import Message


def call(name: str, **arguments: Any) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def find(tree: str, role: str, name: str) -> int:
    m = re.search(rf'^\[(\d+)\] {re.escape(role)} "{re.escape(name)}"', tree, re.M)
    if m is None:
        raise LookupError(f'no {role} "{name}" in the tree')
    return int(m.group(1))


def oracle(messages: list[Message], info: dict[str, Any], rng: np.random.Generator) -> str:
    step = info["plan"][sum(m.role == "assistant" for m in messages)]
    tree = messages[-1].content
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
    ids = [int(x) for x in re.findall(r"^\[(\d+)\]", messages[-1].content, re.M)]
    return call("click", id=int(rng.choice(ids))) if ids else call("finish", answer="")


BASELINES = {"oracle": oracle, "random": random_clicker}
