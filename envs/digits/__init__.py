"""``digits``: answer with digits only. A one-turn environment with a dense reward that a
tiny random model can learn in minutes: the smoke test of a trainer, as CartPole is for RL."""

from __future__ import annotations

from typing import Any

from agentgym.env import AgentEnv
from agentgym.types import Message


class DigitsEnv(AgentEnv):
    """Reply with a number (digits only); reward is the share of digit characters."""

    max_turns = 1

    def task(self, options: dict[str, Any]) -> tuple[list[Message], dict[str, Any]]:
        n = int(self.np_random.integers(0, 1000))
        return [Message(role="user", content=f"Task {n}: reply with digits only.")], {}

    def on_reply(self, content: str) -> list[Message]:
        text = content.strip()
        share = sum(c.isdigit() for c in text) / len(text) if text else 0.0
        self.add_reward("digits", share)
        self.end(success=bool(text) and share == 1.0)
        return []
