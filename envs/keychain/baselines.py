"""Scripted baselines of ``keychain``: an oracle that follows the chain from the start key
(reward 1) and one that follows the first decoy chain instead (reward 0). Both read the links
from the context (single mode) or with ``lookup`` calls (tools mode)."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from agentgym.types import Message

LINK = re.compile(r'The value of key ([0-9a-f-]{36}) is "(.*?)"\.')
START = re.compile(r"Start from key ([0-9a-f-]{36})")


def _follow(messages: list[Message], start: str, answer: str) -> str:
    first = messages[0].content
    if "lookup(key)" not in first:  # single mode: everything is in the context
        links = dict(LINK.findall(first))
        value = start
        while value in links:
            value = links[value]
        return (
            f"Following the chain from {start}, the question is: {value}\n<answer>{answer}</answer>"
        )
    values = [m.content for m in messages if m.role == "tool"]
    last = values[-1] if values else start
    if re.fullmatch(r"[0-9a-f-]{36}", last):
        return (
            f"<tool_call>{json.dumps({'name': 'lookup', 'arguments': {'key': last}})}</tool_call>"
        )
    return f"<tool_call>{json.dumps({'name': 'answer', 'arguments': {'text': answer}})}</tool_call>"


def oracle(messages: list[Message], info: dict[str, Any], rng: np.random.Generator) -> str:
    start = START.search(messages[0].content)
    return _follow(messages, start.group(1) if start else "", str(info["answer"]))


def decoy(messages: list[Message], info: dict[str, Any], rng: np.random.Generator) -> str:
    return _follow(messages, info["decoy_starts"][0], str(info["decoy_answers"][0]))


BASELINES = {"oracle": oracle, "decoy": decoy}
