"""What a training run measures and learns outside its GRPO steps: the held-out evaluation
(``agentgym.evaluate`` on the run's environments) and the supervised cold start.

Held-out tasks never meet training: rollouts run with ``split="train"`` and the evaluation with
``split="eval"``, so environments with a task list (deep_research, retrieval_qa, swe,
gui_action) play disjoint tasks (``AgentEnv.holdout_fraction``); the evaluation's seeds also
start at ``EVAL_SEED``, far from the training seeds, for environments that draw their tasks
from the seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentgym._compute import run_torch
from agentgym._imports import require
from agentgym.evaluate import aevaluate
from agentgym.policies.base import TokenPolicy
from agentgym.policies.config import resolve_script
from agentgym.policies.scripted import ScriptedTokenPolicy
from agentgym.rollout import EnvPool, RolloutConfig, TrajectoryWriter, rollout
from agentgym.trainers.checkpoint import write_model
from agentgym.trainers.grpo.config import TrainConfig
from agentgym.trainers.learner import Learner
from agentgym.trainers.sft import fine_tune, load_sequences

EVAL_SEED = 1_000_000_000
COLD_START_SEED = 500_000_000


async def evaluate(
    cfg: TrainConfig, envs: EnvPool, policy: TokenPolicy, step: int, phase: str
) -> dict[str, Any]:
    """Play the held-out tasks once each (``trainer.eval_temperature``; 0 is greedy) into
    ``eval/<phase>_step_N/``; return the ``eval_*`` record for metrics.jsonl."""
    tc = cfg.trainer
    # the policy's own sampling stays as it is: training episodes may be in flight beside
    held = cfg.rollout.model_copy(update={"split": "eval", "temperature": tc.eval_temperature})
    s = await aevaluate(
        envs,
        policy,
        episodes=tc.eval_tasks,
        seed=EVAL_SEED + cfg.seed,
        out=Path(cfg.out) / "eval" / f"{phase}_step_{step:06d}",
        settings=held,
    )
    return {
        "step": step,
        "phase": phase,
        "eval_reward_mean": s["mean_reward"],
        "eval_success_rate": s["success_rate"],
        "eval_pass@1": s["pass_at_k"]["1"],
        "eval_format_error_rate": s["format_error_rate"],
        "eval_mean_turns": s["mean_turns"],
        "eval_tasks": s["episodes"] + s["failed_episodes"],
        "eval_panel": s.get("panel"),
        "eval_failed_episodes": s["failed_episodes"],
    }


async def cold_start(cfg: TrainConfig, envs: EnvPool, learner: Learner) -> list[dict[str, Any]]:
    """Supervised fine-tuning before GRPO: on ``cold_start.data``, or on ``episodes`` of the
    env's scripted baseline written in the model's template (training split only); the
    episodes go to ``cold_start/trajectories.jsonl`` (a rerun reuses them). Returns the SFT
    steps' metrics."""
    cs, out = cfg.cold_start, Path(cfg.out) / "cold_start"
    data = cs.data
    if data is None:
        baselines = cfg.env.env_class.baselines
        script = resolve_script(cs.baseline, baselines, "cold_start.baseline")
        tokenizer = require("transformers", "train").AutoTokenizer.from_pretrained(cfg.start)
        teacher = ScriptedTokenPolicy(script, tokenizer, learner.images)
        first = COLD_START_SEED + cfg.seed
        train: RolloutConfig = cfg.rollout.model_copy(update={"split": "train"})
        data = str(out / "trajectories.jsonl")
        with TrajectoryWriter(data) as writer:
            tasks = list(range(first, first + cs.episodes))
            await rollout(envs, teacher, tasks, 1, train, writer)
    seqs = load_sequences([data], cs.min_reward)
    history = await run_torch(fine_tune, learner, seqs, cs, cfg.seed)
    if cs.save_model:  # a model folder other runs start from (init=)
        await run_torch(write_model, learner, cfg.start, out / "model")
    return history
