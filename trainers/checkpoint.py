"""Checkpoints that resume exactly: model, optimiser, scheduler, RNG, step.

Each checkpoint is written to a temporary folder and renamed into place, and ``latest`` is
replaced atomically after it, so a crash at any moment leaves the previous one intact.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from agentgym._imports import require
from agentgym.config import flatten
from agentgym.errors import CheckpointError, ConfigError
from agentgym.models import copy_model_files
from agentgym.trainers.learner import Learner

RESUMABLE = (
    "out", "trainer.steps", "trainer.resume", "trainer.save_every", "trainer.keep_checkpoints",
    "trainer.eval_every",
    "rollout.concurrency", "policy.engines", "learner.ranks", "learner.fsdp",
)  # fmt: skip
"""Settings a resumed run may change; any other difference refuses the resume (checkpoints
hold whole weights, so the number of learner ranks and their layout may change)."""


def run_config(config: dict[str, Any]) -> dict[str, Any]:
    """The settings that define a run (flattened to dotted keys), as its checkpoints record."""
    return {k: v for k, v in flatten(config) if k not in RESUMABLE}


def check_resume(path: Path, config: dict[str, Any], respelled: Callable[[str], str] = str) -> None:
    """``ConfigError`` naming the first setting in which ``config`` differs from the run that
    wrote the checkpoint at ``path`` (whose keys ``respelled`` brings to today's spelling)."""
    saved = json.loads((path / "state.json").read_text()).get("config")
    if saved is None:
        return  # written before checkpoints recorded their run's settings
    saved = {respelled(k): v for k, v in saved.items()}
    mine = run_config(config)
    changed = sorted(k for k in saved.keys() | mine.keys() if saved.get(k) != mine.get(k))
    if changed:
        key = changed[0]
        raise ConfigError(
            key,
            f"is {mine.get(key)!r} but the run in {path.parent.parent} was trained with "
            f"{saved.get(key)!r} (and {len(changed) - 1} more differences)",
            "resume with the run's own settings, or start a new run: drop trainer.resume or "
            "pass another out=<dir>",
        )


def save(
    root: Path,
    step: int,
    learner: Learner,
    base: str | Path,
    config: dict[str, Any],
    sampler: dict[str, Any] | None = None,
    keep: int | None = None,
    protect: int | None = None,
) -> Path:
    """Save the state after ``step`` completed steps of the run ``config`` describes (its
    settings are recorded for ``check_resume``) and the state of its sampler (``sampler``:
    what a sampler ahead had started, see ``ahead.AheadState``); return its folder.

    The folder is also a model folder that every policy loads (``policy.model=``,
    ``model=``/``init=``): ``base``'s tokenizer and config beside the weights; with LoRA the
    loadable model is ``merged/`` inside it (adapters folded in). Once it is complete, only
    the newest ``keep`` checkpoints stay (``None``: all), and the one of step ``protect``."""
    final = root / f"step_{step:06d}"
    tmp = root / f".step_{step:06d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        _write(tmp, step, learner, base, config, sampler)
    except Exception as exc:  # torch: "enforce fail at inline_container.cc", safetensors: its own
        shutil.rmtree(tmp, ignore_errors=True)
        free = shutil.disk_usage(root).free if root.exists() else 0
        full = getattr(exc, "errno", None) == errno.ENOSPC or free < 64 * 2**20
        why = f"the disk is full ({free / 2**20:.0f} MiB free)" if full else str(exc)[:300]
        raise CheckpointError(
            f"checkpoint step {step} in {root} could not be written: {why}; the previous "
            "checkpoint is intact (a rerun resumes from it). Fix: free space or pass another "
            "out=, or keep fewer with trainer.keep_checkpoints"
        ) from exc
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    latest = root / "latest"
    (root / "latest.tmp").write_text(final.name)
    os.replace(root / "latest.tmp", latest)
    if keep is not None:
        for old in sorted(root.glob("step_*"))[:-keep]:
            if protect is None or old.name != f"step_{protect:06d}":
                shutil.rmtree(old, ignore_errors=True)
    return final


def _write(
    tmp: Path,
    step: int,
    learner: Learner,
    base: str | Path,
    config: dict[str, Any],
    sampler: dict[str, Any] | None,
) -> None:
    """A checkpoint's files into ``tmp``."""
    torch = require("torch", "train")
    learner.weights.save_weights(tmp / "model.safetensors")
    if learner.cfg.lora.rank > 0:
        write_model(learner, base, tmp / "merged")
    else:
        copy_model_files(base, tmp)
        learner.model.config.save_pretrained(tmp)
    rng = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    torch.save({**learner.weights.state(), "rng": rng}, tmp / "trainer.pt")
    state = {"step": step, "config": run_config(config), "sampler": sampler or {}}
    (tmp / "state.json").write_text(json.dumps(state))


def write_model(learner: Learner, base: str | Path, folder: Path) -> Path:
    """An ordinary model folder at ``folder``: ``base``'s tokenizer, chat template and
    generation config, and the learner's weights (LoRA merged). Returns ``folder``."""
    shutil.rmtree(folder, ignore_errors=True)
    copy_model_files(base, folder)
    learner.weights.export(folder)
    return folder


def latest(root: Path) -> Path | None:
    """The newest complete checkpoint, if any."""
    pointer = root / "latest"
    if not pointer.exists():
        return None
    path = root / pointer.read_text().strip()
    return path if (path / "state.json").exists() else None


def load(path: Path, learner: Learner) -> tuple[int, dict[str, Any]]:
    """Restore ``learner`` and the RNGs from ``path``; return the step to continue from and
    the sampler's state."""
    torch = require("torch", "train")
    learner.weights.load_weights(path / "model.safetensors")
    state: dict[str, Any] = torch.load(path / "trainer.pt", weights_only=False)
    learner.weights.load_state(state)
    torch.set_rng_state(state["rng"]["torch"])
    np.random.set_state(state["rng"]["numpy"])
    random.setstate(state["rng"]["python"])
    saved = json.loads((path / "state.json").read_text())
    return int(saved["step"]), saved.get("sampler", {})
