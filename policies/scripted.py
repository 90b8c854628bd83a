"""``ScriptedPolicy``: actions computed by a function or replayed from a list."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from agentgym.policy import Context, Policy
from agentgym.types import Message, Sample

Script = Callable[[list[Message], dict[str, Any], np.random.Generator], str]


class ScriptedPolicy(Policy):
    """Text-only policy for tests and oracle baselines (no token ids).

    Args:
        script: ``fn(messages, reset_info, rng) -> text`` or a list of texts replayed in order
            (the last one repeats).
    """

    def __init__(self, script: Script | Sequence[str]) -> None:
        if not callable(script) and not script:
            raise ValueError("a scripted policy needs a function or a non-empty list of actions")
        self.script = script

    async def act(self, ctx: Context, max_tokens: int) -> Sample:
        if callable(self.script):
            if ctx.state is None:
                ctx.state = np.random.default_rng(ctx.seed)
            text = self.script(list(ctx.messages), ctx.info, ctx.state)
        else:
            text = self.script[min(ctx.turns, len(self.script) - 1)]
        ctx.turns += 1
        ctx.messages.append(Message(role="assistant", content=text))
        return Sample(text=text)
