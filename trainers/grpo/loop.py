"""The GRPO training loop. Each step: rollouts -> rewards -> advantages -> update -> sync ->
metrics (and a checkpoint every ``save_every`` steps). Read it top to bottom. With
``trainer.max_off_policy_steps=k > 0`` the rollouts of the next ``k`` steps run while a step
learns (``ahead.py``), and a weight sync waits for the turns in flight, not for the episodes.

Outputs under ``cfg.out``: ``metrics.jsonl`` (one line a step, and one per held-out
evaluation), TensorBoard events in ``tb/``, ``trajectories/step_NNNNNN.jsonl``,
``checkpoints/`` (each also a loadable model folder), ``model/`` (the final policy), and for
vLLM rollouts ``policy/`` (the weights the engine serves).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from statistics import fmean, pstdev
from typing import TYPE_CHECKING, Any

import numpy as np

import agentgym
from agentgym import rundir
from agentgym._compute import run_torch
from agentgym._imports import require
from agentgym.config import redact
from agentgym.rollout import EnvPool, env_factory, summarize
from agentgym.trainers.grpo import checkpoint, distributed, ranks
from agentgym.trainers.grpo.ahead import staleness, step_source
from agentgym.trainers.grpo.batch import build_batch, first_trained
from agentgym.trainers.grpo.config import TrainConfig
from agentgym.trainers.grpo.heldout import cold_start, evaluate
from agentgym.trainers.grpo.learner import Learner
from agentgym.trainers.grpo.memory import memory_plan
from agentgym.trainers.grpo.sync import connect, probe, push_weights

if TYPE_CHECKING:
    from agentgym.policies.hf import HFPolicy
    from agentgym.policies.router import Router
    from agentgym.policies.vllm import VLLMPolicy

StepCallback = Callable[[dict[str, Any]], None]


def _seed_everything(seed: int) -> None:
    torch = require("torch", "train")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rollout_policy(
    cfg: TrainConfig, learner: Learner, out: Path
) -> HFPolicy | VLLMPolicy | Router:
    """The sampler: hf shares the learner's model (a replica of it beside a sharded
    learner); vllm serves ``out/policy``, which ``push_weights`` rewrites after every update."""
    transformers = require("transformers", "train")
    sampling = cfg.policy.sampling()
    if cfg.policy.name == "hf":
        from agentgym.policies.hf import HFPolicy

        tokenizer = transformers.AutoTokenizer.from_pretrained(cfg.policy.model)
        model = learner.replica() if learner.sharded else learner.model
        return HFPolicy(model, tokenizer, sampling, images=learner.images)
    from agentgym.policies.vllm import start_engines
    from agentgym.policies.vllm_weights import RECEIVER

    # never write into the user's model folder; the weights are the learner's (a resumed
    # run's, an init's, or a LoRA merge)
    weights = checkpoint.write_model(learner, cfg.policy.model, out / "policy")
    # the engine computes as the learner does (fp32 on a CPU, bf16 on CUDA): a CPU learner's
    # small updates rounded into a bf16 engine left the sampler far from the learner (SmolLM2
    # after a cold start: French prose from the engine, tool calls from the learner)
    dtype = str(learner.compute_dtype).removeprefix("torch.")
    engine = {"dtype": dtype, **cfg.policy.engine}
    if cfg.trainer.weight_sync == "broadcast":
        engine.setdefault("worker_extension_cls", RECEIVER)
    if cfg.policy.placement == "ray":  # engines on the run's cluster
        from agentgym.rollout.remote import ensure_ray

        ensure_ray(cfg.rollout.ray_address)
    log = out / "vllm.log"
    return start_engines(
        cfg.policy.engines, str(weights), sampling, log, cfg.policy.placement, **engine
    )


def _truncate_history(out: Path, start: int) -> None:
    """Forget steps >= start (a resumed run redoes them from the checkpoint)."""
    metrics = out / "metrics.jsonl"
    if metrics.exists():
        keep = [ln for ln in metrics.read_text().splitlines() if _kept(json.loads(ln), start)]
        metrics.write_text("".join(ln + "\n" for ln in keep))
    for path in (out / "trajectories").glob("step_*.jsonl"):
        if int(path.stem.split("_")[1]) >= start:
            path.unlink()


def _kept(record: dict[str, Any], start: int) -> bool:
    """A step's record before ``start``, or an evaluation made at or before it."""
    return record["step"] < start or (start > 0 and "phase" in record and record["step"] <= start)


RUN_FILES = (
    "checkpoints", "trajectories", "eval", "cold_start", "metrics.jsonl", "tb", "report.html",
    "model", "policy", "config.json", "vllm.log", "vllm.logging.json",
)  # fmt: skip
"""What a training run writes in ``out``: set aside when a fresh run starts there."""


async def train(
    cfg: TrainConfig,
    on_step: StepCallback | None = None,
    on_plan: StepCallback | None = None,
    on_eval: StepCallback | None = None,
    on_note: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Train with GRPO as ``cfg`` says; return the metrics of the steps run now.

    ``on_step`` gets each step's metrics, ``on_eval`` each held-out evaluation (also written
    to metrics.jsonl, with ``phase``: base, sft or grpo), ``on_plan`` the GPU memory plan (on
    a GPU only), ``on_note`` one-line notes for the user (a previous run set aside, a resume
    that found no checkpoint). ``out`` is held by this process while it trains. Under
    ``torchrun``, or with ``trainer.ranks`` Ray actors, rank 0 trains and the other ranks
    follow it (``distributed``, ``ranks``)."""
    if distributed.world()[0] > 0:
        await run_torch(follow, cfg)
        return []
    with rundir.claim(Path(cfg.out)):
        followers = ranks.start(cfg)
        try:
            return await _train(cfg, on_step, on_plan, on_eval, on_note or (lambda note: None))
        finally:
            try:
                await run_torch(distributed.stop)
                await asyncio.to_thread(followers.join)  # a rank's failure fails the run
            finally:
                followers.close()


def follow(cfg: TrainConfig) -> None:
    """A rank other than 0: a replica of rank 0's learner (its checkpoint, if resumed) that
    takes part in every update until rank 0 is done."""
    _seed_everything(cfg.seed)
    learner = Learner(cfg.init or cfg.policy.model, cfg.trainer, cfg.device)
    last = checkpoint.latest(Path(cfg.out) / "checkpoints")
    if cfg.trainer.resume and last is not None:
        checkpoint.load(last, learner)
    distributed.follow(learner)


def _start(
    cfg: TrainConfig, learner: Learner, note: Callable[[str], None]
) -> tuple[int, dict[str, Any]]:
    """The step to start from, and the sampler's state then: a fresh run sets a previous run
    in ``out`` aside; a resumed one loads the latest checkpoint, if the run that wrote it had
    the same settings."""
    out = Path(cfg.out)
    if not cfg.trainer.resume:
        moved = rundir.set_aside(out, RUN_FILES)
        if moved is not None:
            note(f"{out} held a previous run: moved to {moved}")
        return 0, {}
    last = checkpoint.latest(out / "checkpoints")
    if last is None:
        note(f"trainer.resume=true but {out} has no checkpoint yet: starting at step 0")
        return 0, {}
    checkpoint.check_resume(last, cfg.model_dump(mode="json"))
    return checkpoint.load(last, learner)


async def _train(
    cfg: TrainConfig,
    on_step: StepCallback | None,
    on_plan: StepCallback | None,
    on_eval: StepCallback | None,
    note: Callable[[str], None],
) -> list[dict[str, Any]]:
    out = Path(cfg.out)
    _seed_everything(cfg.seed)
    tc = cfg.trainer
    learner = Learner(cfg.init or cfg.policy.model, tc, cfg.device)
    start, sampler_state = _start(cfg, learner, note)
    (out / "config.json").write_text(json.dumps(redact(cfg.model_dump(mode="json")), indent=2))
    if learner.device.type == "cuda" and on_plan is not None:
        import torch

        share = (
            float(cfg.policy.engine.get("gpu_memory_utilization", 0.9))
            if cfg.policy.name == "vllm"
            else 0.0
        )
        total = torch.cuda.get_device_properties(learner.device).total_memory
        on_plan(
            memory_plan(
                learner.model, tc.micro_batch_tokens, tc.gradient_checkpointing, share, total
            )
        )
    _truncate_history(out, start)
    policy = _rollout_policy(cfg, learner, out)
    policy.version = start
    sender = None
    if policy.weights_dir is not None and tc.weight_sync == "broadcast":
        sender = await connect(policy)
    settings = cfg.rollout.settings(split="train")
    # environments (browsers, containers, Ray actors) live across steps
    envs = EnvPool(
        env_factory(
            cfg.env.id, cfg.env.kwargs, cfg.imports, cfg.rollout.backend, cfg.rollout.ray_address
        )
    )
    source = step_source(envs, policy, settings, tc, cfg.seed, sampler_state)
    # an hf sampler is the learner's own model: its turns wait while an update changes it
    shared = policy.weights_dir is None and not learner.sharded
    tb = require("torch.utils.tensorboard", "train").SummaryWriter(str(out / "tb"))
    probe_prompt = policy.renderer.prompt_ids(*await _first_prompt(cfg))
    history: list[dict[str, Any]] = []

    def log(record: dict[str, Any], callback: StepCallback | None) -> None:
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        for key, value in record.items():
            if isinstance(value, int | float):
                tb.add_scalar(key, value, record["step"])
        if callback is not None:
            callback(record)

    async def held_out(step: int, phase: str) -> None:
        if tc.eval_tasks:
            log(await evaluate(cfg, envs, policy, settings, step, phase), on_eval)

    try:
        if start == 0:
            await held_out(0, "base")
            if cfg.cold_start.enabled:
                await cold_start(cfg, envs, learner, settings)
                await push_weights(policy, learner, 0, sender)
                await held_out(0, "sft")
        last, busy = time.perf_counter(), policy.gate.busy_seconds  # the previous step's end
        for step in range(start, tc.steps):
            # 1. rollouts: tasks_per_step groups of G samples (sync: played now, tasks a fixed
            # function of the step; ahead: the first to finish, at most k versions old)
            t0 = time.perf_counter()
            path = out / "trajectories" / f"step_{step:06d}.jsonl"
            trajs, dropped = await source.batch(step, path)
            t1 = time.perf_counter()
            # 2. rewards and advantages (an episode that failed for the infrastructure's sake
            # is recorded, not trained on)
            failed = sum(t.stop_reason == "error" for t in trajs)
            trajs = [t for t in trajs if t.stop_reason != "error"]
            batch = build_batch(trajs, tc)
            seqs = batch.sequences
            # 3. the learner's own log-probs at the sampling weights, needed when a batch is
            # split into several updates (and the reference's, for KL)
            ids = [s.token_ids for s in seqs]
            starts = [first_trained(s.loss_mask) for s in seqs]
            shown = [s.images for s in seqs]
            # (torch work runs on one thread, the HF sampler's: see agentgym/_compute.py)
            if tc.minibatches > 1:
                olds = await run_torch(learner.logprobs, ids, starts=starts, images=shown)
                for s, old in zip(seqs, olds, strict=True):
                    s.old_logprobs = old
            if tc.kl_coef > 0:
                refs = await run_torch(
                    learner.logprobs, ids, reference=True, starts=starts, images=shown
                )
                for s, ref in zip(seqs, refs, strict=True):
                    s.ref_logprobs = ref
            # 4. updates: one optimiser step per minibatch
            async with policy.gate.changing() if shared else contextlib.nullcontext():
                updates = [
                    await run_torch(learner.update, seqs[i :: tc.minibatches])
                    for i in range(tc.minibatches)
                    if seqs[i :: tc.minibatches]
                ]
                if shared:  # the sampler's weights are these: the new version starts now
                    policy.version = step + 1
            t2 = time.perf_counter()
            # 5. sync the sampler (between its turns) and prove it
            await push_weights(policy, learner, step + 1, sender)
            gap = None  # hf rollouts run on the learner's own model: nothing was synced
            if not shared:
                gap = await probe(policy, learner, probe_prompt, tc.sync_probe_tol)
            t3 = time.perf_counter()
            # 6. metrics and checkpoints
            record = _metrics(step, trajs, batch, updates, (t0, t1, t2, t3), gap, learner)
            record["failed_episodes"] = failed
            record["dropped_groups"] = dropped
            # wall time since the previous step's sync, and the share of it no turn was sampled
            record["step_seconds"] = t3 - last
            record["sampler_idle_fraction"] = 1 - (policy.gate.busy_seconds - busy) / (t3 - last)
            last, busy = t3, policy.gate.busy_seconds
            history.append(record)
            log(record, on_step)
            if (step + 1) % tc.save_every == 0 or step + 1 == tc.steps:
                base, run = cfg.init or cfg.policy.model, cfg.model_dump(mode="json")
                checkpoint.save(
                    out / "checkpoints", step + 1, learner, base, run, source.state(),
                    tc.keep_checkpoints,
                )  # fmt: skip
            if step + 1 == tc.steps or (tc.eval_every and (step + 1) % tc.eval_every == 0):
                await held_out(step + 1, "grpo")
        # the trained policy as a model folder (LoRA merged): policy.model=<out>/model
        await run_torch(
            checkpoint.write_model, learner, cfg.init or cfg.policy.model, out / "model"
        )
    finally:
        tb.close()
        if sender is not None:
            sender.close()
        await source.aclose()
        await envs.aclose()
        await policy.aclose()
        # vllm's copy of the weights (rewritten at every start); the trained policy is out/model
        shutil.rmtree(out / "policy", ignore_errors=True)
    return history


async def _first_prompt(cfg: TrainConfig) -> tuple[list[Any], list[Any]]:
    env = agentgym.make(cfg.env.id, **cfg.env.kwargs)
    try:
        obs, _ = await env.areset(seed=cfg.seed)
    finally:
        env.close()
    return obs.messages, obs.tools


def _metrics(
    step: int,
    trajs: list[Any],
    batch: Any,
    updates: list[dict[str, float]],
    times: tuple[float, float, float, float],
    gap: float | None,
    learner: Learner,
) -> dict[str, Any]:
    t0, t1, t2, t3 = times
    summary = summarize(trajs)
    sampled = sum(sum(t.loss_mask) for t in trajs)
    total = sum(len(t.token_ids) for t in trajs)
    learned = sum(u["trained_tokens"] for u in updates)
    record: dict[str, Any] = {
        "step": step,
        "reward_mean": fmean(batch.rewards),
        "reward_std": pstdev(batch.rewards),
        "success_rate": summary["success_rate"],
        **{f"pass@{k}": v for k, v in summary["pass_at_k"].items()},
        "tied_groups": batch.tied_groups,
        "skipped_trajectories": batch.skipped,
        "mean_turns": summary["mean_turns"],
        "format_error_rate": summary["format_error_rate"],
        "trainable_token_fraction": sampled / max(total, 1),
        "rollout_seconds": t1 - t0,
        "learn_seconds": t2 - t1,
        "sync_seconds": t3 - t2,
        "rollout_tokens_per_second": sampled / max(t1 - t0, 1e-9),
        "learner_tokens_per_second": learned / max(t2 - t1, 1e-9),
        "sync_probe_gap": gap,
        "learner_ranks": learner.world,
        **staleness(trajs, step),
        **{k: v for k, v in summary.items() if k.startswith("judge_")},
    }
    for key in updates[0] if updates else ():
        record[key] = fmean(u[key] for u in updates)
    return record
