"""A third-party environment package, as a user would write one (used by the tests)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import agentgym
from agentgym import AgentEnv, Message, tool


class CountEnv(AgentEnv):
    """Say the number shown; optionally slow (for kill-and-resume tests)."""

    max_turns = 2

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay, self.number = delay, 0

    def task(self, options: dict[str, Any]) -> tuple[list[Message], dict[str, Any]]:
        self.number = int(self.np_random.integers(0, 10**6))
        return [Message(role="user", content=f"Say {self.number}.")], {"number": self.number}

    @tool
    async def say(self, number: int) -> str:
        """Say a number.

        Args:
            number: The number.
        """
        await asyncio.sleep(self.delay)
        self.add_reward("correct", float(number == self.number))
        self.end(success=number == self.number, pid=os.getpid())
        return "ok"

    @staticmethod
    def oracle(messages: list[Message], info: dict[str, Any], rng: Any) -> str:
        return (
            f'<tool_call>{{"name": "say", "arguments": {{"number": {info["number"]}}}}}</tool_call>'
        )

    baselines = {"oracle": oracle}


agentgym.register("count_import", CountEnv, description="registered by import")
