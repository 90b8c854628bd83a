"""The Gymnasium spaces of every agentgym environment: observations are ``Observation``s
(messages and tools), actions are assistant messages (a ``Message``, its text, or an OpenAI
assistant message dict)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from agentgym.types import Message, Observation


class ObservationSpace(gym.Space[Observation]):
    """The space of ``Observation``s (messages + tools)."""

    def __init__(self) -> None:
        super().__init__(shape=None, dtype=None)

    def contains(self, x: Any) -> bool:
        return isinstance(x, Observation)

    def __eq__(self, other: object) -> bool:  # gymnasium's vector envs compare spaces
        return isinstance(other, ObservationSpace)

    def __hash__(self) -> int:
        return hash(type(self))

    def sample(self, mask: Any = None, probability: Any = None) -> Observation:
        return Observation(messages=[Message(role="user", content="")])


class ActionSpace(gym.Space[Message | str]):
    """The space of assistant messages (or their plain text)."""

    def __init__(self) -> None:
        super().__init__(shape=None, dtype=None)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str | dict) or (isinstance(x, Message) and x.role == "assistant")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActionSpace)

    def __hash__(self) -> int:
        return hash(type(self))

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        letters = np.array(list('abcdefghijklmnopqrstuvwxyz {}<>":,_'))
        return "".join(self.np_random.choice(letters, size=int(self.np_random.integers(1, 64))))
