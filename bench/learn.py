"""Does a real pretrained model learn here? The README's main command over several seeds:
`agentgym train recipe=deep_research_smollm2` (SmolLM2-135M-Instruct, dequantised from its
packaged GGUF, on deep_research's one-search questions: an SFT cold start on 32 episodes of
the naive baseline, then GRPO with vLLM rollouts), evaluated on 32 held-out questions at
temperature 1 (as GRPO samples) before anything, after the cold start, and during GRPO.
Prints one row per seed; each run's curves are in its report.html.

    bash scripts/setup.sh --models
    .venv/bin/python bench/learn.py [--seeds 0 1 2] [--steps 3] [--eval-every 3]

Measured here (README, "Does an agent learn here?"): about 11 min a seed for 3 steps.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from agentgym.cli import main


def run(seed: int, args: argparse.Namespace) -> tuple[list[dict[str, object]], float]:
    out = Path(args.out) / f"seed{seed}"
    overrides = [
        "recipe=deep_research_smollm2",
        f"seed={seed}",
        f"trainer.steps={args.steps}",
        f"trainer.eval_every={args.eval_every}",
        f"out={out}",
    ]
    t = time.perf_counter()
    if main(["train", *overrides]) != 0:
        sys.exit(f"training failed (seed {seed})")
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "phase" in r], time.perf_counter() - t


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--eval-every", type=int, default=3)
    parser.add_argument("--out", default="runs/learn")
    args = parser.parse_args()
    rows = [(seed, *run(seed, args)) for seed in args.seeds]
    columns = [f"{e['phase']} {e['step']}" for e in rows[0][1]]
    print("| seed | " + " | ".join(columns) + " | minutes |")
    print("|---" * (len(columns) + 2) + "|")
    for seed, evals, seconds in rows:
        cells = [f"{e['eval_reward_mean']:.3f} ({e['eval_success_rate']:.2f})" for e in evals]
        print(f"| {seed} | " + " | ".join(cells) + f" | {seconds / 60:.1f} |")
