"""``TokenPolicy``: the shared half of every policy that samples token ids (hf, openai, vllm)."""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from agentgym.policies.chat import ChatRenderer
from agentgym.policy import Context, Policy
from agentgym.types import Message, Sample, ToolSpec
from agentgym.vision import ImageInputs


class SamplingConfig(BaseModel):
    """Sampling settings: the one definition (and bounds) for every policy and the trainer
    (``policy.temperature=`` in eval and in train)."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(1.0, ge=0.0, description="0: greedy")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="nucleus sampling's mass (1: all)")
    max_new_tokens: int = Field(256, ge=1, description="the most tokens of one turn")

    def sampling(self) -> SamplingConfig:
        """Only the sampling settings of a config that has more (a policy's)."""
        return SamplingConfig(**self.model_dump(include=set(SamplingConfig.model_fields)))


class Weights(Protocol):
    """A learner's weights as a sampler takes them (``agentgym.trainers.weights.Weights``)."""

    def policy_weights(self) -> tuple[dict[str, Any], Any]:
        """The policy's full weights (LoRA merged) as a sampler loads them, and its config."""

    def export(self, path: Path) -> None:
        """Write ``policy_weights`` to the model folder ``path``."""


class WeightSource(Protocol):
    """What a trainable policy reads of its learner (``agentgym.trainers.learner.Learner``):
    its ``weights``."""

    @property
    def weights(self) -> Weights: ...


class WeightPath(Protocol):
    """How a trainable policy's engines get a learner's weights (``VLLMWeights``)."""

    async def push(self, policy: TokenPolicy, learner: WeightSource, version: int) -> None: ...

    def close(self) -> None: ...


class TokenPolicy(Policy):
    """Keeps each episode's token ids, loss mask and log-probs (and, for a vision-language
    model, given its ``images``, the images those ids show); subclasses only ``generate``.

    A trainable one (built by ``build_policy(..., learner=)``) also owns its weight sync:
    ``sync_from(learner, version)`` after each update, ``learning(version)`` around it."""

    weight_path: WeightPath | None = None
    """How this policy's engines load a learner's weights (None: not built for training)."""

    def __init__(
        self, tokenizer: Any, sampling: SamplingConfig, images: ImageInputs | None = None
    ) -> None:
        self.renderer = ChatRenderer(tokenizer, images)
        self.sampling = sampling

    def replicas(self) -> list[TokenPolicy]:
        """The samplers that hold a copy of the weights (a router's engines; else this one):
        each must load a learner's weights, and the trainer's sync probe checks each. Empty
        where the policy samples with the learner's own model object."""
        return [self]

    async def sync_from(self, learner: WeightSource, version: int) -> None:
        """Sample from ``learner``'s current weights from now on, as policy ``version``: the
        change waits for the turns in flight (``gate``); later turns of the same episodes run
        on the new weights."""
        if self.weight_path is None:
            raise TypeError(f"{type(self).__name__} was not built to load a learner's weights")
        await self.weight_path.push(self, learner, version)

    @contextlib.asynccontextmanager
    async def learning(self, version: int) -> AsyncIterator[None]:
        """Around a learner's update: a policy that samples with the learner's own model
        holds its turns back meanwhile (and is ``version`` after it); others sample on."""
        yield

    async def aclose(self) -> None:
        if self.weight_path is not None:
            self.weight_path.close()

    def start(
        self, messages: list[Message], tools: list[ToolSpec], info: dict[str, Any], seed: int
    ) -> Context:
        ctx = super().start(messages, tools, info, seed)
        ctx.append(self.renderer.prompt_ids(ctx.messages, ctx.tools), sampled=False)
        ctx.images = [ref for m in ctx.messages for ref in m.images]
        ctx.state = []
        return ctx

    async def act(self, ctx: Context, max_tokens: int) -> Sample:
        sampling = self.sampling
        if ctx.temperature is not None:
            sampling = sampling.model_copy(update={"temperature": ctx.temperature, "top_p": 1.0})
        limit = min(max_tokens, sampling.max_new_tokens)
        seed = ctx.seed * 1009 + ctx.turns
        async with self.gate.sampling():  # one version of the weights for the whole turn
            version = self.version
            sample = await self.generate_turn(ctx, limit, seed, sampling)
        self.record(ctx, sample, version)
        return sample

    async def generate_turn(
        self, ctx: Context, max_tokens: int, seed: int, sampling: SamplingConfig
    ) -> Sample:
        """Sample the next turn of ``ctx`` (an engine router picks the episode's engine)."""
        return await self.generate(list(ctx.token_ids), max_tokens, seed, sampling)

    def record(self, ctx: Context, sample: Sample, version: int | None = None) -> None:
        """Append a turn sampled by weights ``version`` (default: the current) to ``ctx``."""
        version = self.version if version is None else version
        ctx.append(sample.token_ids, sampled=True, logprobs=sample.logprobs, version=version)
        ctx.state = sample.token_ids
        ctx.turns += 1
        ctx.messages.append(Message(role="assistant", content=sample.text))

    def observe(self, ctx: Context, messages: list[Message]) -> None:
        ctx.append(self.renderer.continuation_ids(ctx.state, messages), sampled=False)
        ctx.images.extend(ref for m in messages for ref in m.images)
        ctx.messages.extend(messages)

    @abstractmethod
    async def generate(
        self,
        prompt_ids: list[int],
        max_tokens: int,
        seed: int,
        sampling: SamplingConfig | None = None,
    ) -> Sample:
        """Sample up to ``max_tokens`` ids after ``prompt_ids``, with their log-probs, as
        ``sampling`` says (default: the policy's own)."""
