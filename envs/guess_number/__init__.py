"""The example environment: find a secret integer with a ``guess`` tool.

It is the shortest complete ``AgentEnv``: a seeded task, one tool, a reward, and two scripted
baselines (an oracle that bisects, a random guesser) for ``agentgym eval policy=scripted``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from agentgym.env import AgentEnv, AgentEnvConfig
from agentgym.errors import ToolError
from agentgym.tools import tool
from agentgym.types import Message


class GuessNumberConfig(AgentEnvConfig):
    """``env.*`` keys of ``guess_number``."""

    low: int = Field(1, description="the smallest secret")
    high: int = Field(100, description="the largest secret")
    max_turns: int = Field(8, ge=1, description="assistant turns before the episode is cut")

    @model_validator(mode="after")
    def _ordered(self) -> GuessNumberConfig:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) is above high ({self.high})")
        return self


class GuessNumberEnv(AgentEnv):
    """Find a secret integer; the guess tool answers 'higher' or 'lower'."""

    config_model = GuessNumberConfig
    cfg: GuessNumberConfig

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.low, self.high, self.secret = self.cfg.low, self.cfg.high, self.cfg.low

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
