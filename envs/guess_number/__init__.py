"""The example environment: find a secret integer with a ``guess`` tool.

It is the shortest complete ``AgentEnv``: a seeded task, one tool, a reward, and two scripted
baselines (an oracle that bisects, a random guesser) for ``agentgym eval policy=scripted``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from agentgym import AgentEnv, Message, ToolError, tool


class GuessNumberEnv(AgentEnv):
    """Find a secret integer; the guess tool answers 'higher' or 'lower'."""

    max_turns = 8

    def __init__(self, low: int = 1, high: int = 100, max_turns: int | None = None) -> None:
        super().__init__(max_turns=max_turns)
        self.low, self.high, self.secret = low, high, low

    def task(self, options: dict[str, Any]) -> tuple[list[Message], dict[str, Any]]:
        self.secret = int(self.np_random.integers(self.low, self.high + 1))
        prompt = (
            f"I am thinking of an integer between {self.low} and {self.high}. "
            f"Find it with the guess tool in at most {self.max_turns} turns."
        )
        return [Message(role="user", content=prompt)], {"low": self.low, "high": self.high}

    @tool
    def guess(self, number: int) -> str:
        """Guess the secret number.

        Args:
            number: Your guess.
        """
        if not self.low <= number <= self.high:
            raise ToolError(f"{number} is outside {self.low}..{self.high}")
        if number == self.secret:
            self.add_reward("correct", 1.0)
            self.end(success=True)
            return f"{number} is correct!"
        return f"{number} is too {'low' if number < self.secret else 'high'}."

    @staticmethod
    def _bounds(messages: list[Message], info: dict[str, Any]) -> tuple[int, int]:
        low, high = info["low"], info["high"]
        for m in messages:
            for number, word in re.findall(r"(-?\d+) is too (low|high)", m.content):
                if word == "low":
                    low = max(low, int(number) + 1)
                else:
                    high = min(high, int(number) - 1)
        return low, high

    @staticmethod
    def oracle(messages: list[Message], info: dict[str, Any], rng: np.random.Generator) -> str:
        """Bisect the interval the answers so far leave open."""
        low, high = GuessNumberEnv._bounds(messages, info)
        return _call((low + high) // 2)

    @staticmethod
    def random(messages: list[Message], info: dict[str, Any], rng: np.random.Generator) -> str:
        """Guess uniformly at random, ignoring the answers."""
        return _call(int(rng.integers(info["low"], info["high"] + 1)))

    baselines = {"oracle": oracle, "random": random}


def _call(number: int) -> str:
    return f'<tool_call>{{"name": "guess", "arguments": {{"number": {number}}}}}</tool_call>'
