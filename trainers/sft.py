"""Supervised fine-tuning on trajectories: the cold start of R1-style pipelines.

``agentgym sft data=runs/oracle/trajectories.jsonl model=MODEL out=runs/sft`` trains on exactly
the token ids stored in the trajectories, with their loss masks (the tokens the policy wrote;
never the prompt, tool results or template), and writes ``out/model``: an ordinary model folder
(config, tokenizer with its chat template, safetensors) that every policy, ``agentgym train
model=`` and ``init=`` load. ``min_reward`` keeps only trajectories whose reward reaches it
(rejection-sampling fine-tuning on a model's own rollouts). Trajectories written by a text-only
policy have no token ids; write them with a token-level one, e.g. a scripted oracle in the
model's template: ``agentgym eval policy=scripted policy.tokenizer=MODEL``.

``agentgym train cold_start.episodes=N`` runs the same fine-tuning on the environment's oracle
before GRPO (see ``trainers/grpo/heldout.py``). The learner is the GRPO trainer's; only the
objective differs (``NLL``).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from agentgym._imports import require
from agentgym.config import Device
from agentgym.errors import ConfigError
from agentgym.rollout.writer import read_trajectories
from agentgym.rundir import claim
from agentgym.trainers.checkpoint import write_model
from agentgym.trainers.config import LearnerConfig, LoRAConfig
from agentgym.trainers.grpo.config import SFTSettings
from agentgym.trainers.learner import Learner, MicroBatch
from agentgym.trainers.sequence import Sequence


class SFTConfig(SFTSettings):
    """``agentgym sft``."""

    data: list[str] = Field(description="trajectory JSONL files (or run folders holding them)")
    model: str = Field(description="the model folder to fine-tune")
    out: str = Field("runs/sft", description="where metrics.jsonl and model/ go")
    device: Device = Field("auto", description="where the learner runs")
    seed: int = Field(0, ge=0, description="seeds the shuffling and the learner")
    lora: LoRAConfig = Field(default_factory=LoRAConfig)


class NLL:
    """SFT's objective: the mean negative log-likelihood of the tokens the loss mask covers
    (what the policy wrote, never the env), over the whole batch."""

    def still(self, seq: Sequence) -> bool:
        return False

    def loss(self, logp: Any, logits: Any, batch: MicroBatch) -> tuple[Any, dict[str, Any]]:
        return -(logp * batch.mask).sum() / max(batch.tokens, 1.0), {}


def _files(path: str) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        return sorted(p.glob("trajectories.jsonl")) + sorted(p.glob("trajectories/*.jsonl"))
    return [p] if p.exists() else []


def load_sequences(paths: list[str], min_reward: float | None = None) -> list[Sequence]:
    """The trajectories in ``paths`` as SFT sequences (token ids and loss masks as stored).

    Raises:
        ConfigError: a path holds no trajectories, none has token ids, or none passes
            ``min_reward``.
    """
    seqs: list[Sequence] = []
    seen = without_ids = 0
    for path in paths:
        files = _files(path)
        if not files:
            raise ConfigError("data", f"no trajectories at {path!r}", "pass a trajectories JSONL")
        for traj in (t for f in files for t in read_trajectories(f)):
            seen += 1
            if not any(traj.loss_mask):
                without_ids += 1
            elif min_reward is None or traj.reward >= min_reward:
                seqs.append(Sequence(traj.token_ids, traj.loss_mask, [], [], images=traj.images))
    if not seqs:
        why = (
            f"none of the {seen} trajectories has token ids"
            if without_ids == seen
            else f"none of the {seen} trajectories has reward >= {min_reward}"
        )
        fix = (
            "write them with a token-level policy (policy=scripted policy.tokenizer=MODEL)"
            if without_ids == seen
            else "lower min_reward"
        )
        raise ConfigError("data", why, fix)
    return seqs


def fine_tune(
    learner: Learner,
    seqs: list[Sequence],
    cfg: SFTSettings,
    seed: int = 0,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """``cfg.epochs`` passes over ``seqs`` in shuffled batches, with a fresh optimiser (cosine
    schedule); return each step's metrics. The learner's optimiser is fresh afterwards too."""
    per_epoch = math.ceil(len(seqs) / cfg.batch_size)
    before, steps = learner.cfg, learner.optimiser.steps
    learner.restart_optimizer(
        before.model_copy(
            update={
                "lr": cfg.lr,
                "schedule": "cosine",
                "warmup_steps": cfg.warmup_steps,
                "micro_batch_tokens": cfg.micro_batch_tokens,
            }
        ),
        per_epoch * cfg.epochs,
    )
    rng = random.Random(seed)
    history: list[dict[str, Any]] = []
    try:
        for epoch in range(cfg.epochs):
            order = list(range(len(seqs)))
            rng.shuffle(order)
            for b in range(per_epoch):
                batch = [seqs[i] for i in order[b * cfg.batch_size : (b + 1) * cfg.batch_size]]
                stats = learner.update(batch, NLL())
                record = {"sft_step": len(history), "epoch": epoch, **stats}
                history.append(record)
                if on_step is not None:
                    on_step(record)
    finally:
        learner.restart_optimizer(before, steps)
    return history


def run_sft(cfg: SFTConfig, on_step: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """Fine-tune as ``cfg`` says; write ``metrics.jsonl`` and ``model/``; return the model."""
    out = Path(cfg.out)
    seqs = load_sequences(cfg.data, cfg.min_reward)
    with claim(out):
        return _fine_tune_into(out, seqs, cfg, on_step)


def _fine_tune_into(
    out: Path,
    seqs: list[Sequence],
    cfg: SFTConfig,
    on_step: Callable[[dict[str, Any]], None] | None,
) -> Path:
    require("torch", "train").manual_seed(cfg.seed)
    (out / "config.json").write_text(cfg.model_dump_json(indent=2))
    learner = Learner(cfg.model, LearnerConfig(lora=cfg.lora), cfg.device)
    with open(out / "metrics.jsonl", "w") as f:

        def record(rec: dict[str, Any]) -> None:
            f.write(json.dumps({"trajectories": len(seqs), **rec}) + "\n")
            f.flush()
            if on_step is not None:
                on_step(rec)

        fine_tune(learner, seqs, cfg, cfg.seed, record)
    return write_model(learner, cfg.model, out / "model")
