"""Does an agent learn here, and what do turn-level and intent-aware credit add? Per
environment, over seeds and arms, on fixed held-out panels.

    .venv/bin/python bench/learn.py --env deep_research --seeds 0 1 2 --arms outcome sft-only turn
    .venv/bin/python bench/learn.py --env retrieval_qa --arms outcome sft-only turn intent
    .venv/bin/python bench/learn.py --table runs/learn           # the tables of runs made

Each seed first runs the env's recipe (``agentgym/conf/recipe/<env>_<model>.yaml``): the base
model's held-out evaluation, the cold start (SFT on the env's scripted baseline; its model is
kept), the evaluation after it, then the first arm's GRPO steps. Every other arm of the seed
starts from that cold-start model (``init=``) and spends the same sampled episodes:

* ``outcome``: GRPO on the episode reward alone (``trainer.turn_reward_weight=0``);
* ``sft-only``: the control: the same episodes sampled, supervised fine-tuning on the step's
  own successes only (``trainer.objective=rft``), so that GRPO's share of the gain shows;
* ``turn``: GRPO plus turn-level credit from the env's process signals, normalised among the
  same task's turns at the same index;
* ``intent``: the same, normalised among turns of the same intent label (ChatR1);
* ``state``: the same, among turns that acted on the same observation (GiGPO's anchors).

The held-out panel of a seed (its tasks' content hash, ``eval_panel``) is the same for every
arm, so arms compare task by task. Tables: per seed, base -> after the cold start -> after
GRPO (held-out reward, success); the mean success with a 95% interval (bootstrap over seeds
and held-out tasks); and each arm against ``outcome`` and ``sft-only``, paired by task.
Runs go to ``--out/<env>/seed<N>/<arm>``; a run that finished is not run again.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from statistics import fmean

RECIPES = {
    "deep_research": ("deep_research_smollm2", ["retrieval_useful", "retrieval_correct"]),
    "retrieval_qa": ("retrieval_qa_smollm2", ["intent"]),
    "keychain": ("keychain_smollm2", []),
    "swe": ("swe_smollm2", ["tests_passed"]),
    "gui": ("gui_smollm2", ["progress", "valid_action"]),
}
ARMS = {
    "outcome": ["trainer.turn_reward_weight=0"],
    "sft-only": ["trainer.objective=rft"],
    "turn": ["trainer.turn_groups=turn"],
    "intent": ["trainer.turn_groups=intent"],
    "state": ["trainer.turn_groups=state"],
}
TURN_WEIGHT = 0.5


def arm_overrides(env: str, arm: str) -> list[str]:
    parts = RECIPES[env][1]
    credit = [
        f"trainer.turn_reward_parts=[{', '.join(parts)}]",
        f"trainer.turn_reward_weight={TURN_WEIGHT}",
    ]
    return ARMS[arm] + (credit if arm in ("turn", "intent", "state") else [])


def run(env: str, seed: int, arm: str, first: Path | None, args: argparse.Namespace) -> Path:
    """One run of ``arm`` (from the first arm's cold-start model unless it is the first)."""
    out = Path(args.out) / env / f"seed{seed}" / arm
    if (out / "model").exists():
        return out
    cmd = [sys.executable, "-m", "agentgym.cli", "train", f"recipe={RECIPES[env][0]}",
           f"seed={seed}", f"out={out}", *arm_overrides(env, arm), *args.override]  # fmt: skip
    if first is None:
        cmd.append("cold_start.save_model=true")
    else:  # the same cold start: its model, evaluated as this run's start
        cmd += [f"init={first / 'cold_start' / 'model'}", "cold_start.episodes=0"]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{env} seed {seed} {arm} failed:\n{done.stderr[-3000:]}")
    (out / "minutes.txt").write_text(f"{(time.perf_counter() - t) / 60:.1f}\n")
    return out


def evals(out: Path) -> list[dict]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "phase" in r]


def outcomes(out: Path, record: dict) -> dict[int, float]:
    """Task -> success (1/0) of one held-out evaluation of a run."""
    folder = out / "eval" / f"{record['phase']}_step_{record['step']:06d}"
    rows = [json.loads(x) for x in (folder / "trajectories.jsonl").read_text().splitlines()]
    return {r["task"]: float(r["success"]) for r in rows if r["stop_reason"] != "error"}


def bootstrap(per_seed: list[list[float]], rounds: int = 2000) -> tuple[float, float, float]:
    """Mean and 95% interval of per-task values, resampling seeds, then tasks in each."""
    rng = random.Random(0)
    means = []
    for _ in range(rounds):
        seeds = [per_seed[rng.randrange(len(per_seed))] for _ in per_seed]
        means.append(fmean(x for s in seeds for x in (rng.choice(s) for _ in s)))
    means.sort()
    mean = fmean(x for s in per_seed for x in s)
    return mean, means[int(0.025 * rounds)], means[int(0.975 * rounds) - 1]


def table(env: str, root: Path) -> None:
    """The tables of every run under ``root/<env>``."""
    seeds = sorted((root / env).glob("seed*"))
    if not seeds:
        return
    print(f"\n### {env}\n\n| seed | arm | base | after cold start | after GRPO | minutes |")
    print("|---|---|---|---|---|---|")
    final: dict[str, list[dict[int, float]]] = {}
    base: list[dict[int, float]] = []
    for seed in seeds:
        first = next((seed / a for a in ARMS if (seed / a / "cold_start" / "model").exists()), None)
        for arm_dir in sorted(p for p in seed.iterdir() if (p / "model").exists()):
            ev = evals(arm_dir)
            cells = [f"{e['eval_reward_mean']:.3f} ({e['eval_success_rate']:.2f})" for e in ev]
            start = [e for e in ev if e["phase"] in ("base", "sft")]
            shown = [cells[0], cells[1]] if arm_dir == first else ["(shared)", cells[0]]
            minutes = (arm_dir / "minutes.txt").read_text().strip()
            row = [seed.name, arm_dir.name, *shown, cells[-1], minutes]
            print("| " + " | ".join(row) + " |")
            final.setdefault(arm_dir.name, []).append(outcomes(arm_dir, ev[-1]))
            if arm_dir == first and start:
                base.append(outcomes(arm_dir, start[0]))
    print("\n| arm | held-out success after GRPO (95% CI) | minus base (95% CI) |")
    print("|---|---|---|")
    for arm, per in final.items():
        m, lo, hi = bootstrap([list(s.values()) for s in per])
        gain = [[s[t] - b.get(t, 0.0) for t in s] for s, b in zip(per, base, strict=False)]
        g, glo, ghi = bootstrap(gain) if gain else (0.0, 0.0, 0.0)
        print(f"| {arm} | {m:.3f} ({lo:.3f}, {hi:.3f}) | {g:+.3f} ({glo:+.3f}, {ghi:+.3f}) |")
    for control in ("outcome", "sft-only"):
        if control not in final:
            continue
        print(f"\n| arm | minus {control}, paired by task (95% CI) |\n|---|---|")
        for arm, per in final.items():
            if arm == control:
                continue
            pairs = [
                [s[t] - c[t] for t in s if t in c]
                for s, c in zip(per, final[control], strict=False)
            ]
            d, lo, hi = bootstrap(pairs)
            print(f"| {arm} | {d:+.3f} ({lo:+.3f}, {hi:+.3f}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", nargs="+", default=["deep_research"], choices=list(RECIPES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", default=["outcome"], choices=list(ARMS))
    parser.add_argument("--out", default="runs/learn")
    parser.add_argument("--override", nargs="*", default=[], help="key=value for every run")
    parser.add_argument("--table", help="only print the tables of the runs in this folder")
    args = parser.parse_args()
    if args.table:
        for env in RECIPES:
            table(env, Path(args.table))
        return
    for env in args.env:
        for seed in args.seeds:
            first = run(env, seed, args.arms[0], None, args)
            for arm in args.arms[1:]:
                run(env, seed, arm, first, args)
            print(f"{env} seed {seed}: done", flush=True)
        table(env, Path(args.out))


if __name__ == "__main__":
    main()
