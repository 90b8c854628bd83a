"""The GRPO training loop. Read it top to bottom: open a run (``run.py``), then each step:
rollouts -> rewards and advantages -> log-probs -> updates -> sync -> metrics (and a
checkpoint every ``save_every`` steps, a held-out evaluation every ``eval_every``). With
``trainer.max_off_policy_steps=k > 0`` the rollouts of the next ``k`` steps run while a step
learns (``ahead.py``), and a weight sync waits for the turns in flight, not for the episodes.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from statistics import fmean, pstdev
from typing import Any

from agentgym._compute import run_torch
from agentgym.checks import check_rewards, verdict
from agentgym.errors import CollapseError
from agentgym.rollout import summarize
from agentgym.rundir import claim
from agentgym.settings import load_imports
from agentgym.trainers import distributed, ranks
from agentgym.trainers.checkpoint import latest, load, write_model
from agentgym.trainers.grpo.ahead import staleness
from agentgym.trainers.grpo.batch import Batch, build_batch
from agentgym.trainers.grpo.config import GRPOConfig, TrainConfig
from agentgym.trainers.grpo.heldout import cold_start
from agentgym.trainers.grpo.objective import GRPOObjective
from agentgym.trainers.grpo.run import Hooks, Run, learner_for, open_run, seed_everything
from agentgym.trainers.grpo.sync import probe
from agentgym.trainers.learner import Learner, Objective
from agentgym.trainers.sequence import Sequence, first_trained
from agentgym.trainers.sft import NLL
from agentgym.types import Trajectory


async def train(cfg: TrainConfig, hooks: Hooks | None = None) -> list[dict[str, Any]]:
    """Train with GRPO as ``cfg`` says; return the metrics of the steps run now.

    ``out`` is held by this process while it trains. Under ``torchrun``, or with
    ``learner.ranks`` Ray actors, rank 0 trains and the other ranks follow it
    (``distributed``, ``ranks``)."""
    if distributed.world()[0] > 0:
        await run_torch(follow, cfg.model_dump(mode="json"))
        return []
    settings = cfg.model_dump(mode="json")
    cuda = cfg.device != "cpu" and _cuda()
    with claim(Path(cfg.out)):
        if cfg.trainer.check_tasks and not cfg.trainer.resume:
            rows = await check_rewards(cfg.env.id, cfg.env.kwargs, cfg.trainer.check_tasks)
            verdict(cfg.env.id, rows)
        followers = ranks.start(cfg.learner.ranks, cuda, cfg.rollout.ray_address, follow, settings)
        try:
            async with open_run(cfg, hooks or Hooks()) as run:
                return await _steps(run)
        finally:
            try:
                await run_torch(distributed.stop)
                await asyncio.to_thread(followers.join)  # a rank's failure fails the run
            finally:
                followers.close()


async def _steps(run: Run) -> list[dict[str, Any]]:
    tc, learner, policy = run.cfg.trainer, run.learner, run.policy
    if run.start == 0:
        await _before_grpo(run)
    history: list[dict[str, Any]] = []
    for step in range(run.start, tc.steps):
        # 1. rollouts: tasks_per_step groups of G samples (sync: played now, tasks a fixed
        # function of the step; ahead: the first to finish, at most k versions old)
        t0 = time.perf_counter()
        trajs, dropped = await run.source.batch(step, run.out / "trajectories" / _name(step))
        t1 = time.perf_counter()
        # 2. rewards and advantages (an episode that failed for the infrastructure's sake
        # is recorded, not trained on)
        played = [t for t in trajs if t.stop_reason != "error"]
        batch = build_batch(played, tc)
        seqs, objective = _learnable(played, batch, tc)
        # 3. the learner's log-probs at the sampling weights (for several minibatches) and
        # the reference's (for KL); torch work runs on one thread: agentgym/_compute.py
        await _old_and_reference(learner, seqs, tc)
        # 4. updates: one optimiser step per minibatch (an hf sampler of the learner's own
        # model holds its turns meanwhile)
        async with policy.learning(version=step + 1):
            updates = [
                await run_torch(learner.update, part, objective)
                for part in _minibatches(seqs, tc.minibatches)
            ]
        t2 = time.perf_counter()
        # 5. sync the sampler (between its turns) and prove it
        await policy.sync_from(learner, step + 1)
        gap = await probe(policy, learner, run.probe_prompt, tc.sync_probe_tol)
        # 6. metrics, early warnings (and a rollback), checkpoint, held-out evaluation
        record = _metrics(step, played, batch, updates, (t0, t1, t2, time.perf_counter()), gap)
        record["failed_episodes"], record["dropped_groups"] = len(trajs) - len(played), dropped
        record["learner_ranks"] = learner.world
        record["step_seconds"], record["sampler_idle_fraction"] = run.lap()
        history.append(record)
        await _close_step(run, step, record)
    # the trained policy as a model folder (LoRA merged): policy.model=<out>/model
    await run_torch(write_model, learner, run.cfg.start, run.out / "model")
    return history


async def _before_grpo(run: Run) -> None:
    """A fresh run: the base model's held-out evaluation, then the cold start (SFT) and the
    evaluation after it; with ``on_collapse=rollback``, a checkpoint to roll back to."""
    await run.held_out(0, "base")
    if run.cfg.cold_start.enabled:
        await cold_start(run.cfg, run.envs, run.learner)
        await run.policy.sync_from(run.learner, 0)
        await run.held_out(0, "sft")
    if run.cfg.trainer.on_collapse == "rollback":
        await run_torch(run.save, 0)


async def _close_step(run: Run, step: int, record: dict[str, Any]) -> None:
    """Warnings (and a rollback), the record, a checkpoint, a held-out evaluation."""
    tc, done = run.cfg.trainer, step + 1
    record["warnings"] = run.watch.step(record)
    run.judge(record["warnings"])
    if record["warnings"] and tc.on_collapse == "rollback":
        record["rolled_back_to"] = await _rollback(run, done, record["warnings"])
    run.log.write(record, run.hooks.step)
    if done % tc.save_every == 0 or done == tc.steps:
        await run_torch(run.save, done)
    if done == tc.steps or (tc.eval_every and done % tc.eval_every == 0):
        warnings = await run.held_out(done, "grpo")
        if warnings and tc.on_collapse == "rollback" and done < tc.steps:
            await _rollback(run, done, warnings)


async def _rollback(run: Run, version: int, why: list[str]) -> int:
    """Restore the last checkpoint that passed, halve the learning rate, sync the sampler
    (as ``version``); return the checkpoint's step."""
    run.rollbacks += 1
    if run.clean is None or run.rollbacks > run.cfg.trainer.max_rollbacks:
        raise CollapseError(
            f"the run collapsed ({', '.join(why)}) {run.rollbacks} times; rollbacks are spent "
            f"(trainer.max_rollbacks={run.cfg.trainer.max_rollbacks}) or no checkpoint passed. "
            "Lower learner.lr, or look at the report's trajectories"
        )
    target, learner = run.clean, run.learner
    await run_torch(load, run.out / "checkpoints" / f"step_{target:06d}", learner)
    lr = run.cfg.learner.lr * 0.5**run.rollbacks  # halved at every rollback
    await run_torch(learner.scale_lr, lr / learner.optimiser.schedule.base_lrs[0])
    await run.policy.sync_from(learner, version)
    run.watch.forget_since(version - target)
    run.hooks.note(
        f"step {version - 1}: {', '.join(why)}: rolled back to step {target}, learning rate "
        f"halved to {lr:.3g}"
    )
    return target


def follow(settings: dict[str, Any]) -> None:
    """A rank other than 0: a replica of rank 0's learner (its checkpoint, if resumed) that
    takes part in every update until rank 0 is done."""
    load_imports(settings.get("imports") or [])  # a user's backend or estimator, as rank 0's
    cfg = TrainConfig.model_validate(settings)
    seed_everything(cfg.seed)
    learner = learner_for(cfg)
    last = latest(Path(cfg.out) / "checkpoints")
    if cfg.trainer.resume and last is not None:
        load(last, learner)
    distributed.follow(learner)


def _name(step: int) -> str:
    return f"step_{step:06d}.jsonl"


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _learnable(
    played: list[Trajectory], batch: Batch, tc: GRPOConfig
) -> tuple[list[Sequence], Objective]:
    """What a step learns from, and how: GRPO on the batch; or, for the ``rft`` control,
    the negative log-likelihood of the step's successful episodes."""
    if tc.objective == "grpo":
        return batch.sequences, GRPOObjective(tc)
    wins = [t for t in played if t.success and not t.attribution_failed]
    whole = [Sequence(t.token_ids, t.loss_mask, images=t.images) for t in wins if t.token_ids]
    parts = [Sequence(s.token_ids, s.loss_mask) for t in wins for s in t.segments]
    return whole + parts, NLL()


def _minibatches(seqs: list[Sequence], n: int) -> list[list[Sequence]]:
    return [part for part in (seqs[i::n] for i in range(n)) if part]


async def _old_and_reference(learner: Learner, seqs: list[Sequence], tc: GRPOConfig) -> None:
    """Fill ``old_logprobs`` when a batch is split into several updates (the first moves the
    weights the later ones are measured against), and ``ref_logprobs`` for KL."""
    ids = [s.token_ids for s in seqs]
    starts = [first_trained(s.loss_mask) for s in seqs]
    shown = [s.images for s in seqs]
    if tc.minibatches > 1:
        olds = await run_torch(learner.logprobs, ids, starts=starts, images=shown)
        for s, old in zip(seqs, olds, strict=True):
            s.old_logprobs = old
    if tc.kl_coef > 0:
        refs = await run_torch(learner.logprobs, ids, reference=True, starts=starts, images=shown)
        for s, ref in zip(seqs, refs, strict=True):
            s.ref_logprobs = ref


def _metrics(
    step: int,
    trajs: list[Trajectory],
    batch: Batch,
    updates: list[dict[str, float]],
    times: tuple[float, float, float, float],
    gap: float | None,
) -> dict[str, Any]:
    t0, t1, t2, t3 = times
    summary = summarize(trajs)
    sampled = sum(t.sampled_tokens for t in trajs)
    total = sum(len(t.token_ids) + sum(len(s.token_ids) for s in t.segments) for t in trajs)
    learned = sum(u["trained_tokens"] for u in updates)
    flops = sum(u.get("flops", 0.0) for u in updates)
    record: dict[str, Any] = {
        "step": step,
        "reward_mean": fmean(batch.rewards),
        "reward_std": pstdev(batch.rewards),
        "success_rate": summary["success_rate"],
        **{f"pass@{k}": v for k, v in summary["pass_at_k"].items()},
        "tied_groups": batch.tied_groups,
        "attribution_failed": sum(t.attribution_failed for t in trajs),
        "skipped_trajectories": batch.skipped,
        "mean_turns": summary["mean_turns"],
        "format_error_rate": summary["format_error_rate"],
        "mean_sampled_tokens": summary["mean_sampled_tokens"],
        "trainable_token_fraction": sampled / max(total, 1),
        "rollout_seconds": t1 - t0,
        "learn_seconds": t2 - t1,
        "sync_seconds": t3 - t2,
        "rollout_tokens_per_second": sampled / max(t1 - t0, 1e-9),
        "learner_tokens_per_second": learned / max(t2 - t1, 1e-9),
        # against this machine's matmul peaks: bench/roofline.py measures them
        "learner_gflops_per_second": flops / max(t2 - t1, 1e-9) / 1e9,
        "sync_probe_gap": gap,
        **staleness(trajs, step),
        **{k: v for k, v in summary.items() if k.startswith("judge_")},
    }
    for key in updates[0] if updates else ():
        record[key] = fmean(u[key] for u in updates)
    record.setdefault("trained_tokens", 0.0)  # no update: nothing to learn from
    return record
