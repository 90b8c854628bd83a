"""Scripted baselines of ``retrieval_qa``: an oracle that retrieves the gold evidence by its
title and answers with the gold answer, and a naive one that retrieves with the user's words
as they are (no context: "Where were they born?") and answers with the first passage's title."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from agentgym.types import Message


def call(name: str, **arguments: Any) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def _answered(messages: list[Message]) -> int:
    return sum(
        m.role == "assistant" and not m.tool_calls and "<tool_call>" not in m.content
        for m in messages
    )


def oracle(messages: list[Message], info: dict[str, Any], rng: np.random.Generator) -> str:
    gold = info["turns"][_answered(messages)]
    if messages[-1].role != "tool":
        return call("retrieve", query=" ".join(gold["evidence_titles"]) or "?", k=3)
    return str(gold["answer"])


def naive(messages: list[Message], info: dict[str, Any], rng: np.random.Generator) -> str:
    if messages[-1].role != "tool":
        return call("retrieve", query=messages[-1].content, k=3)
    first = re.search(r"^\[1\] (.*?): ", messages[-1].content, re.M)
    return first.group(1) if first else "I do not know."


BASELINES = {"oracle": oracle, "naive": naive}
