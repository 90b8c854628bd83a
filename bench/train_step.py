"""One GRPO step, ours against TRL's ``GRPOTrainer``, on the same tiny model and settings.

Both: the ``digits`` task (reward = share of digit characters), 4 prompts x 8 completions,
at most 32 new tokens, temperature 1, no KL, token-level loss, transformers ``generate`` for
sampling (TRL without vLLM; ours with ``policy=hf``) on this CPU. Prints time per phase and
learner tokens/s for ours, time per step for both, and the ratio of time per trained token
(ours/TRL; goal < 1). Steps after the first are timed (the first warms up); a side's time
per step is the median over its steps.

Each side runs in a fresh process, alternating which goes first, ``--rounds`` times; prints
min / median / max of the ratio and each process's CPU seconds. Both sides run without
gradient checkpointing (ours defaults off; TRL's default on made ours look faster). (In one
process the second side inherits the first one's OpenMP threads, which slowed it by up to
1.5x here: see agentgym/_compute.py.)

    bash scripts/setup.sh      # once (installs the [bench] extra: trl, datasets)
    .venv/bin/python bench/train_step.py [--steps 11] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agentgym.testing import build_tiny_model
from agentgym.trainers.grpo.config import load_train_config
from agentgym.trainers.grpo.loop import train

PROMPTS, GROUP, NEW_TOKENS, LR = 4, 8, 32, 1e-5


def ours(model: Path, steps: int, out: Path) -> tuple[float, float, dict[str, float]]:
    """(seconds per step, trained tokens per step, median phase seconds)."""
    cfg = load_train_config(
        [  # the CLI's own defaults (agentgym/conf/train.yaml), then these
            "env=digits",
            f"policy.model={model}",
            "policy=hf",
            "device=cpu",
            f"out={out}",
            f"trainer.steps={steps}",
            f"trainer.tasks_per_step={PROMPTS}",
            f"trainer.group_size={GROUP}",
            f"learner.lr={LR}",
            "trainer.save_every=10000",
            f"policy.max_new_tokens={NEW_TOKENS}",
        ]
    )
    history = asyncio.run(train(cfg))[1:]
    phases = {
        k: statistics.median(h[f"{k}_seconds"] for h in history)
        for k in ("rollout", "learn", "sync")
    }
    step = statistics.median(sum(h[f"{k}_seconds"] for k in phases) for h in history)
    tokens = statistics.fmean(h["trained_tokens"] for h in history)
    phases["learner_tokens_per_second"] = statistics.median(
        h["learner_tokens_per_second"] for h in history
    )
    return step, tokens, phases


def trl(model: Path, steps: int, out: Path) -> tuple[float, float]:
    """(seconds per step, completion tokens per step) for TRL's GRPOTrainer."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig as TRLConfig
    from trl import GRPOTrainer

    def digits(completions: list[Any], **_: Any) -> list[float]:
        texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
        return [sum(ch.isdigit() for ch in t.strip()) / max(len(t.strip()), 1) for t in texts]

    class Clock(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.starts: list[float] = []
            self.ends: list[float] = []

        def on_step_begin(self, *a: Any, **k: Any) -> None:
            self.starts.append(time.perf_counter())

        def on_step_end(self, *a: Any, **k: Any) -> None:
            self.ends.append(time.perf_counter())

    prompts = [
        [{"role": "user", "content": f"Task {i}: reply with digits only."}]
        for i in range(PROMPTS * steps)
    ]
    args = TRLConfig(
        output_dir=str(out),
        per_device_train_batch_size=PROMPTS * GROUP,
        num_generations=GROUP,
        max_completion_length=NEW_TOKENS,
        max_steps=steps,
        learning_rate=LR,
        beta=0.0,
        loss_type="dapo",
        temperature=1.0,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,  # as ours (learner.gradient_checkpointing defaults off)
        save_strategy="no",
        seed=0,
    )
    clock = Clock()
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(model),
        reward_funcs=digits,
        args=args,
        train_dataset=Dataset.from_dict({"prompt": prompts}),
        processing_class=AutoTokenizer.from_pretrained(model),
        callbacks=[clock],
    )
    trainer.train()
    durations = [e - s for s, e in zip(clock.starts, clock.ends, strict=True)][1:]
    lengths = [
        h["completions/mean_length"]
        for h in trainer.state.log_history
        if "completions/mean_length" in h
    ][1:]
    return statistics.median(durations), statistics.fmean(lengths) * PROMPTS * GROUP


def side(name: str, steps: int) -> dict[str, Any]:
    """Run one side in this process; its figures as a dict."""
    model = build_tiny_model(Path(".cache/tiny-model"))
    with tempfile.TemporaryDirectory() as tmp:
        if name == "ours":
            step, tokens, phases = ours(model, steps, Path(tmp))
            return {"step": step, "tokens": tokens, "phases": phases}
        step, tokens = trl(model, steps, Path(tmp))
        return {"step": step, "tokens": tokens}


def in_subprocess(name: str, steps: int) -> dict[str, Any]:
    """One side in a fresh process; its figures, and the CPU seconds the process took."""
    cmd = [sys.executable, __file__, "--side", name, "--steps", str(steps)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {**json.loads(out.strip().splitlines()[-1]), "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=11)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--side", choices=["ours", "trl"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(side(args.side, args.steps)))
        return
    ratios, cpu_ratios = [], []
    for r in range(args.rounds):
        order = ("ours", "trl") if r % 2 == 0 else ("trl", "ours")  # neither always first
        got = {name: in_subprocess(name, args.steps) for name in order}
        mine, theirs = got["ours"], got["trl"]
        ratio = (mine["step"] / mine["tokens"]) / (theirs["step"] / theirs["tokens"])
        ratios.append(ratio)
        cpu_ratios.append(mine["cpu"] / theirs["cpu"])
        phases = ", ".join(f"{k}={v:.3f}" for k, v in mine["phases"].items())
        print(
            f"round {r + 1}: ours {mine['step']:.3f} s/step, {mine['tokens']:.0f} trained "
            f"tokens/step ({phases}), process CPU {mine['cpu']:.1f} s; TRL "
            f"{theirs['step']:.3f} s/step, {theirs['tokens']:.0f} completion tokens/step, "
            f"process CPU {theirs['cpu']:.1f} s; ratio {ratio:.3f}"
        )
    spread = f"{min(ratios):.3f} / {statistics.median(ratios):.3f} / {max(ratios):.3f}"
    print(
        f"train_step ours/TRL time per trained token = {spread} (min / median / max of "
        f"{args.rounds}; goal < 1); process CPU ours/TRL (median) = "
        f"{statistics.median(cpu_ratios):.3f}; both without gradient checkpointing"
    )


if __name__ == "__main__":
    main()
