"""A learner's optimiser: AdamW over the trainable parameters, a warmup + constant/cosine
learning-rate schedule, and the step (gradients summed over ranks where each holds a replica,
clipped by norm, then cleared)."""

from __future__ import annotations

import math
from typing import Any

from agentgym._imports import require
from agentgym.trainers import distributed
from agentgym.trainers.config import LearnerConfig


class Optimiser:
    """AdamW and its schedule over ``steps`` optimiser steps (a cosine decays to 0 at the last).

    Args:
        model: Whose parameters that require a gradient it steps.
        cfg: ``learner.*`` (lr, weight_decay, warmup_steps, schedule, grad_clip).
        steps: Optimiser steps the schedule spans.
    """

    def __init__(self, model: Any, cfg: LearnerConfig, steps: int) -> None:
        self.model = model
        self.restart(cfg, steps)

    def restart(self, cfg: LearnerConfig, steps: int) -> None:
        """A fresh AdamW and schedule under ``cfg`` over ``steps``."""
        torch = require("torch", "train")
        self.cfg, self.steps = cfg, steps
        self.adamw = torch.optim.AdamW(self.params(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.adamw, self._lr_factor)

    def params(self) -> list[Any]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def _lr_factor(self, step: int) -> float:
        if step < self.cfg.warmup_steps:
            return (step + 1) / self.cfg.warmup_steps
        if self.cfg.schedule == "constant":
            return 1.0
        span = max(1, self.steps - self.cfg.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - self.cfg.warmup_steps) / span)))

    def scale_lr(self, factor: float) -> None:
        """Multiply the learning rate (of the schedule too) by ``factor``."""
        self.schedule.base_lrs = [lr * factor for lr in self.schedule.base_lrs]
        for group in self.adamw.param_groups:
            group["lr"] *= factor

    def step(self, zero: bool, summed: bool) -> dict[str, float]:
        """Sum the gradients over ranks (``summed``; FSDP has reduce-scattered them already),
        clip, step the optimiser and the schedule, clear the gradients. ``zero``: no backward
        ran (every sequence was still); the step takes zero gradients, as it would have from a
        backward of a zero loss (AdamW's moments still move the weights)."""
        torch = require("torch", "train")
        params = self.params()
        if zero or summed:
            for p in params:  # a rank whose share was empty still takes part
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
        if summed:
            distributed.all_sum([p.grad for p in params])
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        if hasattr(grad_norm, "full_tensor"):  # a DTensor under FSDP
            grad_norm = grad_norm.full_tensor()
        self.adamw.step()
        self.schedule.step()
        self.adamw.zero_grad(set_to_none=True)
        return {"grad_norm": float(grad_norm), "lr": float(self.schedule.get_last_lr()[0])}

    def zero_grad(self) -> None:
        self.adamw.zero_grad(set_to_none=True)
