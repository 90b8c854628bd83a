"""Scripted baselines of ``deep_research``: an oracle that walks the gold path (search, open
each supporting page in order, answer) and a naive one that answers with the first result's
title. Both read only the conversation and the reset info."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from agentgym.types import Message


def call(name: str, **arguments: Any) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def _question(messages: list[Message]) -> str:
    return messages[0].content.rsplit("Question: ", 1)[-1]


def oracle(messages: list[Message], info: dict[str, Any], rng: np.random.Generator) -> str:
    """Search the question, open the supporting pages in order, answer with the gold answer."""
    calls = sum(m.role == "assistant" for m in messages)
    supporting = info["supporting"]
    if calls == 0:
        return call("search", query=_question(messages), k=5)
    if calls <= len(supporting):
        return call("open_page", url=f"/wiki/{supporting[calls - 1]}")
    return call("answer", text=info["answer"])


def naive(messages: list[Message], info: dict[str, Any], rng: np.random.Generator) -> str:
    """Search the question once and answer with the title of the first result."""
    if not any(m.role == "tool" for m in messages):
        return call("search", query=_question(messages), k=5)
    first = re.search(r"^1\. (.*) \(\S+\)$", messages[-1].content, re.M)
    return call("answer", text=first.group(1) if first else "unknown")


BASELINES = {"oracle": oracle, "naive": naive}
