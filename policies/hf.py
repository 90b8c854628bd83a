"""``HFPolicy``: transformers ``generate`` on CPU or GPU (development, tests, fallback).

Requests from concurrent episodes are batched: every request waiting when the model is free
goes into one left-padded ``generate`` call (up to ``max_batch``), the way a serving engine
batches, so G rollouts of a group cost about one generation, not G.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from agentgym._compute import run_torch
from agentgym._imports import require
from agentgym.policies.base import SamplingConfig, TokenPolicy, WeightSource
from agentgym.policy import Context
from agentgym.types import Sample
from agentgym.vision import ImageInputs, load_model

# Sampling must draw from the policy itself (temperature and top-p only): a model's own
# generation_config (Qwen2.5-Instruct ships repetition_penalty 1.05, top_k 20) would otherwise
# fill these in and reshape the distribution the log-probs claim to come from.
_NEUTRAL = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0, "min_p": None}


class _Forbid:
    """A logits processor that takes ids out of the distribution (a vision-language model's
    image and vision tokens: see ``ImageInputs.forbidden``)."""

    def __init__(self, images: ImageInputs) -> None:
        self.images = images

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        return self.images.mask(scores)


class _ChosenLogprobs:
    """A logits processor that keeps each sampled token's log-prob under the raw logits.

    Called once per generated column, it sees the previous column's chosen tokens at the end
    of ``input_ids``; so it holds one column of log-softmax (batch x vocab) at a time instead
    of every step's logits (``output_logits``: steps x batch x vocab, 40 GB in fp32 for 64
    rollouts of 1K tokens with a 151K vocabulary).
    """

    def __init__(self, torch: Any) -> None:
        self.torch = torch
        self.columns: list[Any] = []
        self._last: Any = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        self._take(input_ids)
        self._last = self.torch.log_softmax(scores.float(), dim=-1)
        return scores

    def _take(self, ids: Any) -> None:
        """Keep the log-prob of the token just chosen (the last column of ``ids``)."""
        if self._last is not None:
            self.columns.append(self._last.gather(1, ids[:, -1:])[:, 0])

    def finish(self, new_ids: Any) -> Any:
        """The (batch x new tokens) log-probs, given the generated ids."""
        self._take(new_ids)
        return self.torch.stack(self.columns, dim=1)


@dataclass
class _Request:
    prompt: list[int]
    max_tokens: int
    seed: int
    sampling: SamplingConfig
    future: asyncio.Future[Sample]
    images: list[str]


class HFPolicy(TokenPolicy):
    """Samples with a transformers causal LM, or a vision-language model (Qwen2-VL family)
    given its ``images``; log-probs are the model's (temperature 1).

    Build one with ``HFPolicy.load(path, sampling)``; a trainer passes its own model object
    so that rollouts always see the learner's current weights (no sync needed). A batch is
    seeded by its first request's seed, so results are reproducible for a given batching
    (which the rollout engine keeps deterministic for deterministic environments).

    Args:
        model: A loaded causal LM.
        tokenizer: Its tokenizer, with a chat template.
        sampling: Temperature, top-p and the per-turn token cap.
        max_batch: Most requests in one ``generate`` call.
        images: A vision-language model's image side (None: text only).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        sampling: SamplingConfig,
        max_batch: int = 64,
        images: ImageInputs | None = None,
    ) -> None:
        super().__init__(tokenizer, sampling, images)
        self.model = model
        self.device = next(model.parameters()).device
        self.max_batch = max_batch
        self._pending: list[_Request] = []
        self._worker: asyncio.Task[None] | None = None
        self.shares_learner = False
        """The model object is a learner's own: an update is the sync (see ``for_learner``)."""

    @classmethod
    def for_learner(
        cls, learner: Any, tokenizer: Any, sampling: SamplingConfig, images: ImageInputs | None
    ) -> HFPolicy:
        """A sampler of ``learner``'s weights: its own model object (every update is seen at
        once), or beside a sharded learner a replica that ``sync_from`` refreshes."""
        if learner.sharded:
            return cls(learner.weights.replica(), tokenizer, sampling, images=images)
        policy = cls(learner.model, tokenizer, sampling, images=images)
        policy.shares_learner = True
        return policy

    def replicas(self) -> list[TokenPolicy]:
        return [] if self.shares_learner else [self]

    @contextlib.asynccontextmanager
    async def learning(self, version: int) -> AsyncIterator[None]:
        """The learner's own model: no turn samples while an update changes it, and the
        turns after it are ``version``'s."""
        if not self.shares_learner:
            yield
            return
        async with self.gate.changing():
            yield
            self.version = version

    async def sync_from(self, learner: WeightSource, version: int) -> None:
        """A replica loads the learner's weights; the learner's own model has them."""
        if self.shares_learner:
            return
        state, _ = await run_torch(learner.weights.policy_weights)
        async with self.gate.changing():
            await run_torch(self.model.load_state_dict, state)
            self.version = version

    @classmethod
    def load(cls, path: str, sampling: SamplingConfig, device: str = "auto") -> HFPolicy:
        """Load a model and tokenizer from a local path or hub id onto ``device``."""
        torch = require("torch", "hf")
        transformers = require("transformers", "hf")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model = load_model(path).to(device).eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        return cls(model, tokenizer, sampling, images=ImageInputs.load(path))

    async def generate_turn(
        self, ctx: Context, max_tokens: int, seed: int, sampling: SamplingConfig
    ) -> Sample:
        return await self._submit(list(ctx.token_ids), max_tokens, seed, sampling, ctx.images)

    async def generate(
        self,
        prompt_ids: list[int],
        max_tokens: int,
        seed: int,
        sampling: SamplingConfig | None = None,
    ) -> Sample:
        return await self._submit(list(prompt_ids), max_tokens, seed, sampling, [])

    async def _submit(
        self,
        prompt: list[int],
        max_tokens: int,
        seed: int,
        sampling: SamplingConfig | None,
        images: list[str],
    ) -> Sample:
        future: asyncio.Future[Sample] = asyncio.get_running_loop().create_future()
        sampling = sampling or self.sampling
        request = _Request(prompt, max_tokens, seed, sampling, future, list(images))
        self._pending.append(request)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Serve waiting requests, a batch at a time (those sampled alike as the first, in
        order), until none is left."""
        while self._pending:
            alike = [r for r in self._pending if r.sampling == self._pending[0].sampling]
            batch, taken = alike[: self.max_batch], {id(r) for r in alike[: self.max_batch]}
            self._pending = [r for r in self._pending if id(r) not in taken]
            try:
                samples = await run_torch(self._generate_batch, batch)
            except Exception as exc:
                for r in batch:
                    if not r.future.done():  # its episode may have been cancelled meanwhile
                        r.future.set_exception(exc)
                continue
            for r, sample in zip(batch, samples, strict=True):
                if not r.future.done():
                    r.future.set_result(sample)

    def _generate_batch(self, batch: list[_Request]) -> list[Sample]:
        torch = require("torch", "hf")
        torch.manual_seed(batch[0].seed)
        self.model.eval()
        pad = self.renderer.tokenizer.pad_token_id
        width = max(len(r.prompt) for r in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long, device=self.device)
        attn = torch.zeros_like(ids)
        for row, r in enumerate(batch):  # left padding: every prompt ends at the same column
            ids[row, width - len(r.prompt) :] = torch.tensor(r.prompt, device=self.device)
            attn[row, width - len(r.prompt) :] = 1
        sampling = batch[0].sampling
        greedy = sampling.temperature <= 0
        kwargs: dict[str, Any] = dict(_NEUTRAL)
        if not greedy:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        chosen = _ChosenLogprobs(torch)
        processors: list[Any] = [chosen]
        vision = self.renderer.images
        if vision is not None:
            processors.insert(0, _Forbid(vision))  # before the log-probs are taken
            images = [ref for r in batch for ref in r.images]  # in row order, as the model reads
            if images:
                kwargs.update(vision.inputs(ids, images))
        # a trainer's float32 weights compute in bf16 on CUDA, as its learner does
        cuda = self.device.type == "cuda"
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            out = self.model.generate(
                ids,
                attention_mask=attn,
                do_sample=not greedy,
                max_new_tokens=max(r.max_tokens for r in batch),
                eos_token_id=self.renderer.eos_id,
                pad_token_id=pad,
                logits_processor=processors,
                **kwargs,
            )
        new = out[:, width:]
        logprobs = chosen.finish(new)
        return [
            self._sample(new[row].tolist(), logprobs[row].tolist(), r.max_tokens)
            for row, r in enumerate(batch)
        ]

    def _sample(self, ids: list[int], logprobs: list[float], cap: int) -> Sample:
        """Cut one row at its first eos (or its own token cap)."""
        eos = self.renderer.eos_id
        end = min(ids.index(eos) + 1 if eos in ids else len(ids), cap)
        ids, logprobs = ids[:end], logprobs[:end]
        finish = "stop" if ids and ids[-1] == eos else "length"
        return Sample(
            text=self.renderer.decode(ids), token_ids=ids, logprobs=logprobs, finish_reason=finish
        )
