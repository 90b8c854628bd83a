"""The data that flows between environments, policies, the rollout engine and trainers.

All models are pydantic and JSON-safe; messages follow the OpenAI chat format so that
trajectories written as JSONL can be read by other tools.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

Role = Literal["system", "user", "assistant", "tool"]


class ToolCall(BaseModel):
    """One call of a tool by the model."""

    id: str = ""
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_openai(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("function"), dict):
            fn, args = data["function"], data["function"].get("arguments") or "{}"
            args = json.loads(args) if isinstance(args, str) else args
            return {"id": data.get("id", ""), "name": fn.get("name"), "arguments": args}
        return data

    @model_serializer
    def _openai(self) -> dict[str, Any]:
        return self.to_openai()

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI ``tool_calls`` entry (arguments as a JSON string)."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": json.dumps(self.arguments)},
        }


class Message(BaseModel):
    """A chat message. ``tool_calls`` only on assistant messages, ``tool_call_id`` on tool ones.

    Serialised (``model_dump``, trajectories) exactly as the OpenAI chat API has it
    (``to_openai``), and read back from that shape too."""

    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    images: list[str] = Field(default_factory=list)
    """Images as data URLs (``data:image/png;base64,...``), for vision-language policies;
    on user messages (OpenAI's schema allows them nowhere else)."""

    @model_validator(mode="before")
    @classmethod
    def _from_openai(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        content = data.get("content")
        if isinstance(content, list):  # parts: text and image_url
            texts = [p.get("text", "") for p in content if p.get("type") == "text"]
            urls = [p["image_url"]["url"] for p in content if p.get("type") == "image_url"]
            data = {**data, "content": "".join(texts), "images": urls}
        elif content is None:
            data = {**data, "content": ""}
        return data

    @model_serializer
    def _openai(self) -> dict[str, Any]:
        return self.to_openai()

    def to_openai(self) -> dict[str, Any]:
        """The message as the OpenAI chat API (and HF chat templates) expect it."""
        content: Any = self.content
        if self.images:
            content = [{"type": "text", "text": self.content}] + [
                {"type": "image_url", "image_url": {"url": url}} for url in self.images
            ]
        out: dict[str, Any] = {"role": self.role, "content": content}
        if self.tool_calls:
            out["tool_calls"] = [c.to_openai() for c in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        return out


class ToolSpec(BaseModel):
    """A tool as the model sees it: name, description and JSON schema of the arguments."""

    name: str
    description: str
    parameters: dict[str, Any]

    @model_validator(mode="before")
    @classmethod
    def _from_openai(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("function"), dict):
            return data["function"]
        return data

    @model_serializer
    def _openai(self) -> dict[str, Any]:
        return self.to_openai()

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


class Observation(BaseModel):
    """What an environment shows the policy: new messages, and the tools it may call."""

    model_config = ConfigDict(frozen=True)

    messages: list[Message]
    tools: list[ToolSpec] = Field(default_factory=list)


class Sample(BaseModel):
    """One generation by a policy: the text and, for token-level backends, ids and log-probs."""

    text: str
    token_ids: list[int] = Field(default_factory=list)
    logprobs: list[float] = Field(default_factory=list)
    finish_reason: str = "stop"
    tool_calls: Any = None
    """Native tool calls exactly as a chat server sent them (OpenAI's ``tool_calls``, the
    arguments a JSON string, possibly malformed): the environment parses them, so that a
    malformed call is an error observation and a format error whichever policy made it."""


class Turn(BaseModel):
    """One assistant action and what the environment answered."""

    index: int
    action: Message
    observation: list[Message]
    reward: float
    reward_parts: dict[str, float] = Field(default_factory=dict)
    format_error: bool = False
    token_span: tuple[int, int] | None = None
    """[start, end) of this turn's sampled tokens in ``Trajectory.token_ids``."""
    policy_seconds: float = 0.0
    env_seconds: float = 0.0
    info: dict[str, Any] = Field(default_factory=dict)
    """What else the environment said of this turn (e.g. an ``intent`` label)."""


class Segment(BaseModel):
    """One token sequence of an episode whose agent was a program (``agentgym.gateway``): the
    model calls whose prompts extend each other by prefix, joined. Aligned lists, as in a
    trajectory: 1 in ``loss_mask`` on the tokens the model sampled."""

    token_ids: list[int] = Field(default_factory=list)
    loss_mask: list[int] = Field(default_factory=list)
    logprobs: list[float] = Field(default_factory=list)
    token_versions: list[int | None] = Field(default_factory=list)


class Trajectory(BaseModel):
    """One episode: the whole conversation, its tokens with a loss mask, and its rewards."""

    env_id: str
    task: int
    """The task's seed: trajectories with the same env and task form a GRPO group."""
    sample: int
    """Index of this rollout within its group."""
    messages: list[Message]
    tools: list[ToolSpec] = Field(default_factory=list)
    turns: list[Turn] = Field(default_factory=list)
    token_ids: list[int] = Field(default_factory=list)
    loss_mask: list[int] = Field(default_factory=list)
    """1 on tokens the policy sampled, 0 on tokens the environment or chat template wrote."""
    logprobs: list[float] = Field(default_factory=list)
    """Sampler log-probs, aligned with ``token_ids`` (0.0 where ``loss_mask`` is 0)."""
    token_versions: list[int | None] = Field(default_factory=list)
    """The policy version (weight updates so far) that sampled each token, aligned with
    ``token_ids``; None where the environment or chat template wrote the token."""
    images: list[str] = Field(default_factory=list)
    """The images whose tokens are in ``token_ids``, in order (data URLs; on disk, paths of
    the run's ``images/`` files, each image stored once)."""
    reward: float = 0.0
    success: bool = False
    terminated: bool = False
    truncated: bool = False
    stop_reason: str = ""
    policy_version: int = 0
    """The policy version when the episode ended."""
    reset_seconds: float = 0.0
    segments: list[Segment] = Field(default_factory=list)
    """A program's episode (``env=harness``): its model calls as token sequences, trained in
    place of ``token_ids`` (empty for an episode the rollout engine drove turn by turn)."""
    attribution_failed: bool = False
    """A program's episode with a model output the gateway did not sample: never trained."""
    info: dict[str, Any] = Field(default_factory=dict)

    @property
    def sampled_tokens(self) -> int:
        """Tokens the policy sampled (in ``token_ids``, or in a program's segments)."""
        return sum(self.loss_mask) + sum(sum(s.loss_mask) for s in self.segments)

    @property
    def key(self) -> tuple[int, int]:
        """(task, sample): unique within one run."""
        return (self.task, self.sample)


class StepResult(BaseModel):
    """The five values of ``step``, as one JSON-safe object."""

    observation: Observation
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any] = Field(default_factory=dict)
