"""What the gateway records of an episode's model calls, and how they become training data.

Every call is kept as it was sampled: the prompt ids (the request rendered by the model's own
chat template), the sampled ids, their log-probs, the policy version. A request that continues
an earlier call's conversation (its messages begin with that call's request and answer) is
prompted with that call's ids and the ids it sampled, the new messages appended as the rollout
engine appends them (``policies/chat.py``): the past is never re-tokenised, so a sampled answer
that decodes and re-encodes differently still joins. ``segments`` joins the
calls of an episode into the fewest token sequences: a call whose prompt extends an earlier
segment's ids (prompt and completion) by prefix continues that segment (the ids between are
the program's and the env's: loss mask 0); a call that does not (the program truncated,
summarised or re-rendered its history) starts a segment of its own. A sampled token is only
ever trained with the ids it was sampled after.

Fail closed: an episode whose history holds an assistant message the gateway did not produce
(a call that went elsewhere, an answer the program rewrote) cannot be attributed; it is
recorded, counted (``attribution_failed``) and never trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentgym.types import Message, Segment


@dataclass
class Call:
    """One model call of an episode, as sampled."""

    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float]
    version: int
    message: Message
    """The assistant message the gateway answered (content and parsed tool calls)."""
    request: tuple[Any, ...] = ()
    """Fingerprints of the request's messages and tools (see ``EpisodeRecord.continued``)."""


@dataclass
class EpisodeRecord:
    """The calls of one episode, and whether every one of them can be attributed."""

    calls: list[Call] = field(default_factory=list)
    unattributed: list[str] = field(default_factory=list)
    """Why an assistant message of a request was not one the gateway produced."""
    model_seconds: float = 0.0
    """Seconds the episode's calls waited on the policy (the rest is the program's)."""

    def check_history(self, history: list[Message]) -> None:
        """Note every assistant message of a request's ``history`` that the gateway did not
        produce for this episode (compared by text and calls)."""
        produced = {_fingerprint(c.message) for c in self.calls}
        for m in history:
            if m.role == "assistant" and _fingerprint(m) not in produced:
                self.unattributed.append(
                    f"an assistant message not sampled here: {m.content[:80]!r}"
                )

    def continued(self, history: list[Message], tools: Any) -> tuple[Call, int] | None:
        """The latest call whose request and answer begin ``history`` (same tools), and how
        many messages they cover: the request continues that call's conversation, so its
        prompt is that call's ids, the sampled ids as sampled, and only the new messages
        rendered (no re-tokenisation of the past)."""
        prints = [_fingerprint(m) for m in history]
        for call in reversed(self.calls):
            *asked, tools_print = call.request or ((),)
            n = len(asked) + 1
            same = call.request and tools_print == repr(tools) and len(prints) > n
            if same and tuple(prints[:n]) == (*asked, _fingerprint(call.message)):
                return call, n
        return None

    @staticmethod
    def request_print(history: list[Message], tools: Any) -> tuple[Any, ...]:
        return (*(_fingerprint(m) for m in history), repr(tools))

    @property
    def attributable(self) -> bool:
        return not self.unattributed

    def segments(self) -> list[Segment]:
        """The calls joined by prefix into the fewest sequences (see the module docstring)."""
        segments: list[Segment] = []
        for call in self.calls:
            seg = next((s for s in segments if _extends(call.prompt_ids, s.token_ids)), None)
            if seg is None:
                seg = Segment()
                segments.append(seg)
            new = call.prompt_ids[len(seg.token_ids) :]
            seg.token_ids += new + call.completion_ids
            seg.loss_mask += [0] * len(new) + [1] * len(call.completion_ids)
            seg.logprobs += [0.0] * len(new) + call.logprobs
            seg.token_versions += [None] * len(new) + [call.version] * len(call.completion_ids)
        return segments


def _extends(prompt: list[int], ids: list[int]) -> bool:
    return len(prompt) >= len(ids) and prompt[: len(ids)] == ids


def _fingerprint(m: Message) -> tuple[Any, ...]:
    calls = tuple(sorted((c.name, repr(sorted(c.arguments.items()))) for c in m.tool_calls))
    return (m.role, m.content.strip(), calls, m.tool_call_id if m.role == "tool" else None)
