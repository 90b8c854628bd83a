"""The learner: a transformers causal LM in torch, and one micro-batch loop that any objective
drives (GRPO's clipped policy gradient, ``grpo/objective.py``; SFT's negative log-likelihood,
``sft.py``).

Full fine-tuning or LoRA (peft), optional gradient checkpointing, float32 weights computed in
bf16 where it keeps the steps (``precision``), micro-batches packed by token count with
gradient accumulation, AdamW, grad-norm clipping, and a warmup + constant/cosine
learning-rate schedule (``learner.*``, ``LearnerConfig``). Under ``torchrun`` (or
``learner.ranks``) every rank holds a replica, or a shard with ``learner.fsdp``
(``distributed``). The learner is composed of its parts, each a field: ``plan`` (how sequences
are cut into forwards, ``microbatch.py``), ``optimiser`` (AdamW, schedule, step,
``optimiser.py``) and ``weights`` (whole weights and state for samplers and checkpoints,
``weights.py``).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agentgym._compute import interruption_point
from agentgym._imports import require
from agentgym.trainers import distributed
from agentgym.trainers.config import LearnerConfig
from agentgym.trainers.microbatch import SOLO_WORK, MicroBatches
from agentgym.trainers.optimiser import Optimiser
from agentgym.trainers.sequence import Sequence, first_trained
from agentgym.trainers.weights import Weights
from agentgym.vision import ImageInputs, load_model


def cpu_bf16() -> bool:
    """Whether this CPU multiplies in bf16 natively (its flags name avx512_bf16 or amx_bf16;
    Linux's ``/proc/cpuinfo``, False where there is none)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return re.search(r"\b(avx512_bf16|amx_bf16)\b", flags) is not None


def precision(torch: Any, device_type: str, setting: str, lora: bool) -> tuple[Any, Any]:
    """(weights' dtype, compute dtype) for ``learner.precision``: float32 weights everywhere,
    computed in bf16 under autocast where ``setting`` says (auto: on CUDA, and on a CPU with
    bf16 units when LoRA trains).

    bf16 weights would lose the steps themselves: AdamW at lr 1e-5 changes 2% of SmolLM2's
    bf16 weights at all (0.4% at 1e-6), every float32 one. A bf16 forward of float32 weights
    still rounds a full fine-tuning step away until the steps add up past the bf16 spacing
    (the CPU recipe's cold start learned nothing so); LoRA's adapters are weights of their
    own, whose steps are not small beside them. LoRA's frozen base stays float32 too: each sync
    merges the adapters into it and takes them out again, which in bf16 would leave a rounding
    error in the base every time."""
    if setting == "auto":
        low = device_type == "cuda" or (device_type == "cpu" and lora and cpu_bf16())
    else:
        low = setting == "bf16"
    return torch.float32, torch.bfloat16 if low else torch.float32


def token_logprobs(logits: Any, ids: Any) -> Any:
    """``log_softmax(logits)[..., ids]`` without a second vocabulary-sized tensor.

    ``logit[id] - logsumexp(logits)`` keeps for backward only what it already has (the
    logits), where ``log_softmax`` would keep its own [batch, tokens, vocab] output: with a
    152K vocabulary that is 5 GB in fp32 for an 8K-token micro-batch.
    """
    torch = require("torch", "train")
    return logits.gather(-1, ids[..., None])[..., 0] - torch.logsumexp(logits, dim=-1)


@dataclass
class MicroBatch:
    """One micro-batch as an objective sees it: tensors ``[rows, width]`` aligned with the
    padded ids (0 where a row is shorter, or where its list was empty).

    Attributes:
        mask: The loss mask.
        advantages: Per-token advantages.
        old: The learner's log-probs at sampling time (``has_old``: every row has them).
        sampler: The sampler's log-probs.
        ref: The reference model's log-probs.
        start: The first position whose log-prob the forward computed.
        tokens: Tokens the loss covers in the whole batch (over every rank).
        sequences: Sequences in the whole batch.
    """

    mask: Any
    advantages: Any
    old: Any
    sampler: Any
    ref: Any
    has_old: bool
    start: int
    tokens: float
    sequences: int


class Objective(Protocol):
    """What a learner's ``update`` minimises (GRPO's loss, SFT's NLL)."""

    def still(self, seq: Sequence) -> bool:
        """True when ``seq``'s share of the loss is 0 whatever the weights (GRPO: a tied
        group's sequence, no KL): the learner takes its statistics from a forward without a
        backward."""
        ...

    def loss(self, logp: Any, logits: Any, batch: MicroBatch) -> tuple[Any, dict[str, Any]]:
        """The micro-batch's share of the batch loss (normalised by the batch's totals, so
        that the shares sum to the batch loss), and statistics summed over its loss tokens
        (the learner reports each divided by the batch's tokens).

        Args:
            logp: Each token's log-prob ``[rows, width]`` (0 before ``batch.start``).
            logits: The logits that predicted tokens ``start..`` (``[rows, width - start,
                vocab]``).
            batch: The micro-batch's tensors.
        """
        ...


class Learner:
    """Holds the model, the optimiser and the schedule; computes log-probs and updates.

    Args:
        model_path: The model folder (or hub id) to start from.
        cfg: ``learner.*``.
        device: ``auto``, ``cpu``, ``cuda``...
        steps: Optimiser steps the schedule spans (a cosine decays to 0 at the last).
        reference: Also hold a frozen copy of the start as the reference (KL); with LoRA the
            base, adapters off, is the reference.
    """

    def __init__(
        self,
        model_path: str,
        cfg: LearnerConfig,
        device: str = "auto",
        steps: int = 1,
        reference: bool = False,
    ) -> None:
        torch = require("torch", "train")
        require("transformers", "train")  # names the extra to install, before any work
        self.torch, self.cfg = torch, cfg
        self.rank, self.world = distributed.world()  # data parallel under torchrun
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and self.world > 1:
            device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
        self.device = torch.device(device)
        distributed.init(self.device.type)
        self.dtype, self.compute_dtype = precision(
            torch, self.device.type, cfg.precision, cfg.lora.rank > 0
        )
        self.model_path, self.images = model_path, ImageInputs.load(model_path)
        self.model = _trainable(load_model(model_path, dtype=self.dtype), cfg).to(self.device)
        self.reference = None
        if reference and cfg.lora.rank == 0:  # frozen: held in the compute dtype
            frozen = load_model(model_path, dtype=self.compute_dtype)
            self.reference = frozen.to(self.device).eval()
        self.sharded = cfg.fsdp and self.world > 1  # (not a vision-language model: settings)
        if self.sharded:
            for m in (self.model, self.reference):
                if m is not None:
                    distributed.shard(m)
        hidden = int(getattr(self.model.config, "hidden_size", 0) or 0)
        solo = SOLO_WORK if self.device.type == "cpu" else None
        self.plan = MicroBatches(hidden, solo, self.sharded)
        self.optimiser = Optimiser(self.model, cfg, steps)
        # a sampler of the weights computes in the compute dtype on CUDA, in float32 on a CPU:
        # a CPU learner's steps are below the bf16 spacing of the weights they change (a full
        # fine-tuning step, or LoRA's adapters merged into the base), and a bf16 engine rounded
        # them away (after a cold start it sampled French prose where the learner called tools)
        sampler_dtype = self.compute_dtype if self.device.type == "cuda" else self.dtype
        self.weights = Weights(
            self.model, self.optimiser, model_path, cfg.lora.rank > 0, self.sharded,
            self.dtype, sampler_dtype, self.device,
        )  # fmt: skip

    def restart_optimizer(self, cfg: LearnerConfig, steps: int) -> None:
        """A fresh AdamW and schedule under ``cfg`` over ``steps`` (an SFT phase and GRPO
        each start one), on every rank."""
        distributed.announce("restart_optimizer", cfg, steps)
        self.cfg = cfg
        self.optimiser.restart(cfg, steps)

    def scale_lr(self, factor: float) -> None:
        """Multiply the learning rate (of the schedule too) by ``factor``, on every rank."""
        distributed.announce("scale_lr", factor)
        self.optimiser.scale_lr(factor)

    @property
    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def autocast(self) -> Any:
        """The context the model computes in (bf16 autocast where ``compute_dtype`` is)."""
        torch = self.torch
        low = self.compute_dtype != torch.float32
        return torch.autocast(self.device.type, dtype=self.compute_dtype, enabled=low)

    def _idle(self, model: Any, backward: bool = False) -> None:
        """A forward (and backward) of a two-token stand-in that adds nothing to a gradient."""
        ids = self.torch.zeros((1, 2), dtype=self.torch.long, device=self.device)
        with self.autocast():
            logits = model(input_ids=ids, use_cache=False).logits
        if backward:
            (logits.sum() * 0).backward()

    def _forward(
        self, model: Any, ids: list[list[int]], start: int = 1, images: list[str] | None = None
    ) -> tuple[Any, Any]:
        """Padded forward from which the log-probs of tokens ``start..`` are read (``images``:
        those the rows show, in row order, for a vision-language model).

        Rows that are all the same sequence share one forward (expanded views: a backward
        sums their gradients, as separate forwards would).

        Returns ``(logp, logits)``: ``logp[:, t]`` is token t's log-prob (0.0 for t < start),
        ``logits[:, j]`` the logits that predicted token ``start + j``. Logits are computed
        only from position ``start - 1`` on (``logits_to_keep``, as TRL does), so a long
        prompt costs no vocabulary projection.
        """
        interruption_point()  # a cancelled run (SIGTERM, Ctrl-C) stops here, not steps later
        torch = self.torch
        if len(ids) > 1 and all(x == ids[0] for x in ids):  # one forward serves every row
            shown = (images or [])[: len(images or []) // len(ids)]
            logp, logits = self._forward(model, ids[:1], start, shown)
            rows = len(ids)
            return logp.expand(rows, -1), logits.expand(rows, -1, -1)
        width = max(len(x) for x in ids)
        start = max(1, min(start, width - 1))
        batch = torch.zeros((len(ids), width), dtype=torch.long, device=self.device)
        attn = torch.zeros_like(batch)
        for row, x in enumerate(ids):
            batch[row, : len(x)] = torch.tensor(x, device=self.device)
            attn[row, : len(x)] = 1
        padded = any(len(x) < width for x in ids)  # no mask at all: SDPA's causal kernel
        pixels = self.images.inputs(batch, images) if images and self.images else {}
        with self.autocast():
            out = model(
                **pixels,
                input_ids=batch,
                attention_mask=attn if padded else None,
                logits_to_keep=width - start + 1,
                use_cache=False,
            )
        logits = out.logits[:, :-1].float()  # right padding: the kept columns are the last ones
        if self.images is not None:  # what the sampler could not sample (its mask, alike)
            logits = self.images.mask(logits)
        logp = token_logprobs(logits, batch[:, start:])
        return torch.nn.functional.pad(logp, (start, 0)), logits

    def logprobs(
        self,
        ids: list[list[int]],
        reference: bool = False,
        starts: list[int] | None = None,
        images: list[list[str]] | None = None,
        as_sampler: bool = False,
    ) -> list[list[float]]:
        """Log-probs of every token given the ones before; 0.0 for the first token and for
        tokens before ``starts[i]`` (the first one the caller needs), which are not computed.
        ``images[i]``: the images sequence i shows (vision-language models); ``as_sampler``:
        computed in ``sampler_dtype`` (the sync probe: whether the weights arrived, apart from
        bf16's rounding). Under ``torchrun`` each rank computes its share and rank 0 gets
        them all."""
        distributed.announce("logprobs", ids, reference, starts, images, as_sampler)
        starts = starts or [1] * len(ids)
        shown = images or [[] for _ in ids]
        mine = distributed.share([len(x) for x in ids], self.rank, self.world)
        out: dict[int, list[float]] = {}
        self.model.eval()
        dtype = self.weights.sampler_dtype if as_sampler else None
        budget = self.cfg.micro_batch_tokens
        with self.torch.no_grad(), _computing(self, dtype):
            rows = [(ids[i], shown[i]) for i in mine]
            for micro in self.plan.rounds(self.plan.batches(rows, budget)):
                if micro is None:
                    self._idle(self.reference if reference and self.reference else self.model)
                    continue
                part = [mine[j] for j in micro]
                logp = self._reference_forward(
                    reference,
                    [ids[i] for i in part],
                    min(starts[i] for i in part),
                    [ref for i in part for ref in shown[i]],
                )
                out.update({i: logp[r, : len(ids[i])].tolist() for r, i in enumerate(part)})
        if self.world == 1:
            return [out[i] for i in range(len(ids))]
        return distributed.gather(mine, [out[i] for i in mine], len(ids))

    def _reference_forward(
        self, reference: bool, ids: list[list[int]], start: int, images: list[str]
    ) -> Any:
        """The policy's log-probs, or the reference's (LoRA: the base, adapters off)."""
        if reference and self.reference is None:
            with self.model.disable_adapter():
                return self._forward(self.model, ids, start, images)[0]
        return self._forward(self.reference if reference else self.model, ids, start, images)[0]

    def update(self, seqs: list[Sequence], objective: Objective) -> dict[str, float]:
        """One optimiser step that minimises ``objective`` over ``seqs`` (accumulating over
        micro-batches and ranks); returns the objective's statistics per token, the loss,
        ``grad_norm``, ``lr``, ``trained_tokens`` and the ``flops`` spent (``model_flops``)."""
        distributed.announce("update", seqs, objective)
        self.model.train()
        self.optimiser.zero_grad()  # a cancelled update's gradients are gone
        tokens, n_seqs = float(sum(sum(s.loss_mask) for s in seqs)), len(seqs)
        share = distributed.share([len(s.token_ids) for s in seqs], self.rank, self.world)
        mine = [seqs[i] for i in share]
        sums: dict[str, float] = defaultdict(float)
        plan = self.plan.for_update(
            [(s.token_ids, s.images) for s in mine],
            [objective.still(s) for s in mine],
            self.cfg.micro_batch_tokens,
        )
        for micro, still in plan:
            if micro is None:
                self._idle(self.model, backward=True)
                continue
            part = [mine[i] for i in micro]
            with self.torch.no_grad() if still else contextlib.nullcontext():
                loss, stats, trained = self._micro_loss(part, objective, tokens, n_seqs)
            if not still:
                loss.backward()
            sums["loss"] += float(loss.detach())
            sums["tokens"] += trained
            sums["flops"] += model_flops(self.model, [s.token_ids for s in part], still)
            for key, value in stats.items():
                sums[key] += float(value)
        sums = distributed.sum_stats(dict(sums), self.world)
        trained = max(sums.pop("tokens", 0.0), 1.0)
        out = {k: (v if k in ("loss", "flops") else v / trained) for k, v in sums.items()}
        zero = all(still for _, still in plan)  # no backward ran
        step = self.optimiser.step(zero, summed=self.world > 1 and not self.sharded)
        return {**out, **step, "trained_tokens": trained}

    def _micro_loss(
        self, part: list[Sequence], objective: Objective, tokens: float, n_seqs: int
    ) -> tuple[Any, dict[str, Any], float]:
        """One micro-batch's forward: its share of the loss, its statistics, its loss tokens."""
        start = min(first_trained(s.loss_mask) for s in part)
        shown = [ref for s in part for ref in s.images]
        logp, logits = self._forward(self.model, [s.token_ids for s in part], start, shown)
        batch = _tensors(part, logp.shape[1], start, tokens, n_seqs, self.device)
        loss, stats = objective.loss(logp, logits, batch)
        return loss, stats, float(batch.mask.sum())


@contextlib.contextmanager
def _computing(learner: Learner, dtype: Any) -> Iterator[None]:
    """``learner`` computes in ``dtype`` inside (None: as it does)."""
    low = learner.compute_dtype
    learner.compute_dtype = dtype or low
    try:
        yield
    finally:
        learner.compute_dtype = low


def model_flops(model: Any, rows: list[list[int]], still: bool = False) -> float:
    """Matrix-product FLOPs of a forward and backward over the distinct sequences of ``rows``
    (alike ones share a forward, ``_forward``; a forward only when ``still``): 2 per parameter
    and token forward, 2 more backward through the activations, and 2 per trainable parameter
    for its gradient: the usual 6N a token for full fine-tuning, about 4N for LoRA
    (attention's own products left out, as 6N does)."""
    tokens = sum(len(ids) for ids in {tuple(ids) for ids in rows})
    total = trainable = 0
    for p in model.parameters():
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return float(tokens * (2 * total if still else 4 * total + 2 * trainable))


def _tensors(
    part: list[Sequence], width: int, start: int, tokens: float, n_seqs: int, device: Any
) -> MicroBatch:
    """``part``'s per-token lists as ``[rows, width]`` tensors (0 past a row's end)."""
    torch = require("torch", "train")

    def pad(rows: list[Any]) -> Any:
        out = torch.zeros((len(rows), width), dtype=torch.float32, device=device)
        for r, row in enumerate(rows):
            if row:
                out[r, : len(row)] = torch.tensor(row, dtype=torch.float32)
        return out

    return MicroBatch(
        mask=pad([s.loss_mask for s in part]),
        advantages=pad([s.advantages for s in part]),
        old=pad([s.old_logprobs for s in part]),
        sampler=pad([s.sampler_logprobs for s in part]),
        ref=pad([s.ref_logprobs for s in part]),
        has_old=all(s.old_logprobs for s in part),
        start=start,
        tokens=tokens,
        sequences=n_seqs,
    )


def _trainable(model: Any, cfg: LearnerConfig) -> Any:
    """``model`` set up to train as ``cfg`` says: a frozen vision tower, gradient
    checkpointing, LoRA adapters."""
    visual = getattr(getattr(model, "model", None), "visual", None)
    if visual is not None and cfg.freeze_vision:
        visual.requires_grad_(False)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if cfg.lora.rank == 0:
        return model
    peft = require("peft", "train")
    lora = peft.LoraConfig(
        r=cfg.lora.rank,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=cfg.lora.target_modules,
        # a frozen vision tower gets no adapters either
        exclude_modules=r".*\.visual\..*" if visual is not None and cfg.freeze_vision else None,
        task_type="CAUSAL_LM",
    )
    return peft.get_peft_model(model, lora)
