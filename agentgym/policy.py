"""The policy interface the rollout engine drives.

A policy owns one ``Context`` per episode: the conversation as messages and, for token-level
backends, as token ids that only ever grow by appending (token-in/token-out), with a loss mask
and the sampler's log-probs. ``start`` renders the first prompt, ``act`` samples the assistant's
turn and appends it, ``observe`` appends what the environment answered.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from agentgym.types import Message, Sample, ToolSpec


@dataclass
class Context:
    """One episode's conversation as the policy sees it."""

    messages: list[Message]
    tools: list[ToolSpec]
    info: dict[str, Any] = field(default_factory=dict)
    """The environment's reset info (scripted baselines may read gold data from it)."""
    seed: int = 0
    token_ids: list[int] = field(default_factory=list)
    loss_mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    turns: int = 0
    state: Any = None
    """Backend-specific state (e.g. the renderer's bookkeeping)."""

    def append(self, ids: list[int], sampled: bool, logprobs: list[float] | None = None) -> None:
        """Append ``ids``: sampled ones count in the loss, the rest do not."""
        self.token_ids.extend(ids)
        self.loss_mask.extend([int(sampled)] * len(ids))
        self.logprobs.extend(logprobs if logprobs is not None else [0.0] * len(ids))

    def truncate(self, n: int) -> None:
        """Drop every token after the first ``n``."""
        del self.token_ids[n:], self.loss_mask[n:], self.logprobs[n:]


class Policy(ABC):
    """Generates assistant turns. Subclasses: scripted, hf, openai, vllm."""

    version: int = 0
    """Bumped by trainers after each weight update; recorded in every trajectory."""

    def start(
        self, messages: list[Message], tools: list[ToolSpec], info: dict[str, Any], seed: int
    ) -> Context:
        """Open an episode's context with the environment's first messages."""
        return Context(messages=list(messages), tools=list(tools), info=dict(info), seed=seed)

    @abstractmethod
    async def act(self, ctx: Context, max_tokens: int) -> Sample:
        """Sample the next assistant turn (at most ``max_tokens``) and append it to ``ctx``."""

    def observe(self, ctx: Context, messages: list[Message]) -> None:
        """Append the environment's answer to ``ctx``."""
        ctx.messages.extend(messages)

    async def aclose(self) -> None:  # noqa: B027 - most policies hold nothing to release
        """Release the backend (servers, engines, clients)."""
