"""A training run's parts, opened together and closed together: ``open_run``.

A run holds the learner (resumed from the latest checkpoint with ``trainer.resume``), the
sampler (a trainable policy that owns its weight sync), the pool of environments (browsers,
containers and Ray actors live across steps), the step source (sampling now, or ahead of the
learner), and the log (``metrics.jsonl``, TensorBoard, the caller's hooks).

Outputs under ``cfg.out``: ``config.json``, ``metrics.jsonl`` (one line a step, and one per
held-out evaluation), TensorBoard events in ``tb/``, ``trajectories/step_NNNNNN.jsonl``,
``eval/<phase>_step_NNNNNN/``, ``cold_start/``, ``checkpoints/`` (each also a loadable model
folder), ``model/`` (the final policy), and for vLLM rollouts ``policy/`` (the weights the
engine serves, deleted when the run ends).
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agentgym._imports import require
from agentgym.cluster import use
from agentgym.config import redact
from agentgym.policies.base import TokenPolicy
from agentgym.policies.config import build_policy
from agentgym.rollout import EnvPool, env_factory
from agentgym.trainers import checkpoint
from agentgym.trainers.grpo.ahead import StepSource, step_source
from agentgym.trainers.grpo.collapse import CollapseWatch
from agentgym.trainers.grpo.config import TrainConfig, respelled
from agentgym.trainers.grpo.heldout import evaluate
from agentgym.trainers.learner import Learner
from agentgym.trainers.memory import memory_plan

Hook = Callable[[dict[str, Any]], None]


@dataclass
class Hooks:
    """What the caller hears of a run: each step's metrics, each held-out evaluation
    (``phase``: base, sft or grpo), the GPU memory plan (on a GPU), one-line notes."""

    step: Hook | None = None
    eval: Hook | None = None
    plan: Hook | None = None
    note: Callable[[str], None] = field(default=lambda note: None)


class Log:
    """``metrics.jsonl`` (appended, a line a record), TensorBoard scalars, and a hook."""

    def __init__(self, out: Path) -> None:
        self.path = out / "metrics.jsonl"
        self.tb = require("torch.utils.tensorboard", "train").SummaryWriter(str(out / "tb"))

    def write(self, record: dict[str, Any], hook: Hook | None) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        for key, value in record.items():
            if isinstance(value, int | float):
                self.tb.add_scalar(key, value, record["step"])
        if hook is not None:
            hook(record)

    def forget_from(self, start: int) -> None:
        """Forget the records and trajectories of steps >= start (a resumed run redoes
        them), keeping the evaluations made at or before it."""
        if self.path.exists():
            lines = self.path.read_text().splitlines()
            kept = [ln for ln in lines if _kept(json.loads(ln), start)]
            self.path.write_text("".join(ln + "\n" for ln in kept))
        for path in (self.path.parent / "trajectories").glob("step_*.jsonl"):
            if int(path.stem.split("_")[1]) >= start:
                path.unlink()

    def close(self) -> None:
        self.tb.close()


def _kept(record: dict[str, Any], start: int) -> bool:
    return record["step"] < start or (start > 0 and "phase" in record and record["step"] <= start)


@dataclass
class Run:
    """The open parts of a run (see the module docstring)."""

    cfg: TrainConfig
    hooks: Hooks
    learner: Learner
    policy: TokenPolicy
    envs: EnvPool
    source: StepSource
    log: Log
    start: int
    probe_prompt: list[int]
    clock: tuple[float, float] = (0.0, 0.0)
    """The previous step's end: (wall time, the sampler's busy seconds then)."""
    watch: CollapseWatch = field(default_factory=CollapseWatch)
    clean: int | None = None
    """The newest checkpoint that passed: the step sampled with its weights raised no
    warning (a rollback's target)."""
    pending: int | None = None
    """The newest checkpoint, not judged yet (the next step samples with its weights)."""
    rollbacks: int = 0

    @property
    def out(self) -> Path:
        return Path(self.cfg.out)

    async def held_out(self, step: int, phase: str) -> list[str]:
        """Evaluate the held-out tasks now (if ``trainer.eval_tasks``); the warnings."""
        if not self.cfg.trainer.eval_tasks:
            return []
        record = await evaluate(self.cfg, self.envs, self.policy, step, phase)
        record["warnings"] = self.watch.evaluation(record)
        self.log.write(record, self.hooks.eval)
        return list(record["warnings"])

    def judge(self, warnings: list[str]) -> None:
        """A step sampled with the pending checkpoint's weights: it passed if no warning."""
        if self.pending is not None and not warnings:
            self.clean = self.pending
        self.pending = None

    def save(self, step: int) -> None:
        """A checkpoint after ``step`` completed steps (judged by the next step)."""
        tc = self.cfg.trainer
        settings = self.cfg.model_dump(mode="json")
        checkpoint.save(
            self.out / "checkpoints", step, self.learner, self.cfg.start, settings,
            self.source.state(), tc.keep_checkpoints, self.clean,
        )  # fmt: skip
        self.pending = step

    def lap(self) -> tuple[float, float]:
        """Wall seconds since the previous lap, and the share of them no turn was sampled."""
        now, busy = time.perf_counter(), self.policy.gate.busy_seconds
        then, was = self.clock
        self.clock = (now, busy)
        return now - then, 1 - (busy - was) / max(now - then, 1e-9)


def seed_everything(seed: int) -> None:
    torch = require("torch", "train")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def learner_for(cfg: TrainConfig) -> Learner:
    """The run's learner, fresh (a resume loads its checkpoint into it)."""
    tc = cfg.trainer
    return Learner(
        cfg.start, cfg.learner, cfg.device, steps=tc.steps * tc.minibatches,
        reference=tc.kl_coef > 0,
    )  # fmt: skip


def _resume(cfg: TrainConfig, learner: Learner, note: Callable[[str], None]) -> tuple[int, Any]:
    """The step to start from, and the sampler's state then: a resumed run loads the latest
    checkpoint, if the run that wrote it had the same settings (``out`` holds no run when a
    fresh one starts: ``load_train_config`` saw to it)."""
    out = Path(cfg.out)
    if not cfg.trainer.resume:
        return 0, {}
    last = checkpoint.latest(out / "checkpoints")
    if last is None:
        note(f"trainer.resume=true but {out} has no checkpoint yet: starting at step 0")
        return 0, {}
    checkpoint.check_resume(last, cfg.model_dump(mode="json"), respelled)
    return checkpoint.load(last, learner)


def _plan(cfg: TrainConfig, learner: Learner, hook: Hook | None) -> None:
    """The GPU memory plan, on a GPU."""
    if learner.device.type != "cuda" or hook is None:
        return
    torch = require("torch", "train")
    share = cfg.policy.gpu_share()
    total = torch.cuda.get_device_properties(learner.device).total_memory
    lc = cfg.learner
    hook(memory_plan(learner.model, lc.micro_batch_tokens, lc.gradient_checkpointing, share, total))


async def _first_prompt(envs: EnvPool, seed: int, policy: TokenPolicy) -> list[int]:
    """The first prompt of the first task, as ids: what the sync probe samples after. It
    comes from an environment of the run's pool, which keeps it for the episodes (no second
    browser, container or Ray actor; a Ray env resets where the run's envs live)."""
    env = envs.acquire()
    try:
        obs, _ = await env.areset(seed=seed)
    except BaseException:
        await env.aclose()
        raise
    envs.release(env)
    return policy.renderer.prompt_ids(obs.messages, obs.tools)


@contextlib.asynccontextmanager
async def open_run(cfg: TrainConfig, hooks: Hooks) -> AsyncIterator[Run]:
    """Open the run ``cfg`` describes (see the module docstring); close it however it ends."""
    out = Path(cfg.out)
    use(cfg.rollout.ray_address)  # the cluster of any Ray actor the run starts
    seed_everything(cfg.seed)
    learner = learner_for(cfg)
    start, sampler_state = _resume(cfg, learner, hooks.note)
    (out / "config.json").write_text(json.dumps(redact(cfg.model_dump(mode="json")), indent=2))
    _plan(cfg, learner, hooks.plan)
    log = Log(out)
    log.forget_from(start)
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(shutil.rmtree, out / "policy", True)  # the engines' copy of the weights
        stack.callback(log.close)
        policy = build_policy(cfg.policy, log_dir=out, learner=learner)
        assert isinstance(policy, TokenPolicy)
        policy.version = start
        stack.push_async_callback(policy.aclose)
        r = cfg.rollout
        envs = EnvPool(
            env_factory(cfg.env.id, cfg.env.kwargs, cfg.imports, r.backend, r.ray_address)
        )
        stack.push_async_callback(envs.aclose)
        train = r.model_copy(update={"split": "train"})
        source = step_source(envs, policy, train, cfg.trainer, cfg.seed, sampler_state)
        stack.push_async_callback(source.aclose)
        prompt = await _first_prompt(envs, cfg.seed, policy)
        clock = (time.perf_counter(), policy.gate.busy_seconds)
        yield Run(cfg, hooks, learner, policy, envs, source, log, start, prompt, clock)
