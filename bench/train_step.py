"""One GRPO step, ours against TRL's ``GRPOTrainer``, on the same tiny model and settings.

Both: the ``digits`` task (reward = share of digit characters), 4 prompts x 8 completions,
at most 32 new tokens, temperature 1, no KL, token-level loss, transformers ``generate`` for
sampling (TRL without vLLM; ours with ``backend=hf``) on this CPU. Prints time per phase and
learner tokens/s for ours, time per step for both, and the ratio of time per trained token
(ours/TRL; goal < 1). Steps after the first are timed (the first warms up).

    .venv/bin/pip install trl   # once
    .venv/bin/python bench/train_step.py [--steps 6]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from agentgym.cli import load_train_config
from agentgym.testing import build_tiny_model
from agentgym.trainers.grpo.loop import train

PROMPTS, GROUP, NEW_TOKENS, LR = 4, 8, 32, 1e-5


def ours(model: Path, steps: int, out: Path) -> tuple[float, float, dict[str, float]]:
    """(seconds per step, trained tokens per step, mean phase seconds)."""
    cfg = load_train_config(
        [  # the CLI's own defaults (agentgym/conf/train.yaml), then these
            "env=digits",
            f"model={model}",
            "backend=hf",
            "device=cpu",
            f"out={out}",
            f"trainer.steps={steps}",
            f"trainer.tasks_per_step={PROMPTS}",
            f"trainer.group_size={GROUP}",
            f"trainer.lr={LR}",
            "trainer.save_every=10000",
            f"sampling.max_new_tokens={NEW_TOKENS}",
        ]
    )
    history = asyncio.run(train(cfg))[1:]
    phases = {
        k: statistics.fmean(h[f"{k}_seconds"] for h in history)
        for k in ("rollout", "learn", "sync")
    }
    step = statistics.fmean(sum(h[f"{k}_seconds"] for k in phases) for h in history)
    tokens = statistics.fmean(h["trained_tokens"] for h in history)
    phases["learner_tokens_per_second"] = statistics.fmean(
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
    return statistics.fmean(durations), statistics.fmean(lengths) * PROMPTS * GROUP


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    model = build_tiny_model(Path(".cache/tiny-model"))
    with tempfile.TemporaryDirectory() as tmp:
        our_step, our_tokens, phases = ours(model, args.steps, Path(tmp) / "ours")
        trl_step, trl_tokens = trl(model, args.steps, Path(tmp) / "trl")
    print(
        f"ours: {our_step:.3f} s/step, {our_tokens:.0f} trained tokens/step; phases "
        + ", ".join(f"{k}={v:.3f}" for k, v in phases.items())
    )
    print(f"TRL : {trl_step:.3f} s/step, {trl_tokens:.0f} completion tokens/step")
    ratio = (our_step / our_tokens) / (trl_step / trl_tokens)
    print(f"train_step ours/TRL time per trained token = {ratio:.3f} (goal < 1)")


if __name__ == "__main__":
    main()
