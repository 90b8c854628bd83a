"""Does a real pretrained model learn here? SmolLM2-135M-Instruct (dequantised from its packaged
GGUF) on deep_research, with a short SFT cold start on the naive baseline's episodes and then
GRPO, evaluated on held-out questions (sampling at temperature 1, as GRPO does; 0 is greedy)
before anything, after the cold start, and during and after GRPO. Prints the held-out table;
the curves are in the run's report.html.

    bash scripts/setup.sh --models
    .venv/bin/python bench/learn.py [--steps 8] [--out runs/learn]

The questions are deep_research's intersection kind (one search, then read the answer off
the results); SmolLM2's chat template has no tool section, so everything it knows of the
tools comes from the cold start. Measured here (README, "Does an agent learn here?"): one run
-0.300 (base) -> -0.188 (after SFT) -> 0.094 (GRPO step 4) -> 0.389 (step 8), 19 min 21 s;
another, cut at 4 steps, -0.300 -> -0.113 -> -0.169: the RL phase is not yet reliable.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agentgym.cli import main

MODEL = ".cache/models/smollm2-135m-instruct"


def run(args: argparse.Namespace) -> list[dict[str, object]]:
    overrides = [
        "env=deep_research",
        "env.kinds=[intersection]",
        f"model={args.model}",
        "backend=hf",
        "device=cpu",
        f"cold_start.episodes={args.cold_start}",
        "cold_start.epochs=1",
        "cold_start.batch_size=4",
        "cold_start.lr=5e-5",
        "cold_start.baseline=naive",
        f"trainer.steps={args.steps}",
        "trainer.group_size=4",
        "trainer.tasks_per_step=4",
        "trainer.lr=1e-5",
        "trainer.micro_batch_tokens=2048",
        f"trainer.eval_tasks={args.eval_tasks}",
        f"trainer.eval_every={args.eval_every}",
        f"trainer.eval_temperature={args.eval_temperature}",
        "trainer.save_every=100",
        "sampling.max_new_tokens=64",
        "rollout.max_turns=3",
        f"out={args.out}",
    ]
    if main(["train", *overrides]) != 0:
        sys.exit("training failed")
    lines = (Path(args.out) / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "phase" in r]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--cold-start", type=int, default=32, help="naive episodes for SFT")
    parser.add_argument("--eval-tasks", type=int, default=32)
    parser.add_argument("--eval-every", type=int, default=4)
    parser.add_argument(
        "--eval-temperature", type=float, default=1.0, help="1: the policy as GRPO samples it"
    )
    parser.add_argument("--out", default="runs/learn")
    evals = run(parser.parse_args())
    print("| phase | step | held-out reward | success | format-error rate |")
    print("|---|---|---|---|---|")
    for e in evals:
        print(
            f"| {e['phase']} | {e['step']} | {e['eval_reward_mean']:.3f} "
            f"| {e['eval_success_rate']:.3f} | {e['eval_format_error_rate']:.3f} |"
        )
