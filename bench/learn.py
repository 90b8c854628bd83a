"""Does an agent learn here, and what do turn-level and intent-aware credit add? The learning
matrix, cell by cell over sessions, into the ledger (``bench/ledger.py``).

    .venv/bin/python bench/learn.py --next 2          # the next 2 cells the ledger lacks
    .venv/bin/python bench/learn.py --env retrieval_qa --seeds 0 --arms outcome intent
    .venv/bin/python bench/learn.py --table           # docs/results.md from the ledger

A cell is one ``(env, arm, seed)`` run of the env's recipe (``agentgym/conf/recipe/``): the base
model's held-out evaluation, the cold start (SFT on the env's scripted baseline; its model is
kept), the evaluation after it, then the arm's GRPO steps. A later arm of the same seed starts
from that cold-start model (``init=``) while its folder is still here (in another session it
runs its own), and spends the same sampled episodes:

* ``outcome``: GRPO on the episode reward alone (``trainer.turn_reward_weight=0``);
* ``sft-only``: the control: the same episodes sampled, supervised fine-tuning on the step's
  own successes only (``trainer.objective=rft``), so that GRPO's share of the gain shows;
* ``turn``: GRPO plus turn-level credit from the env's process signals, normalised among the
  same task's turns at the same index;
* ``intent``: the same, normalised among turns of the same intent label (ChatR1);
* ``state``: the same, among turns that acted on the same observation (GiGPO's anchors);
* ``rloo``, and every other advantage estimator registered (``trainer.estimator``; a user's
  own from ``--import MODULE``): outcome-only GRPO with that estimator.

The held-out panel of a seed (its tasks' content hash) is the same for every arm, so arms
compare task by task. A finished cell appends its line to the ledger (a killed one leaves
nothing); a cell is missing when the ledger has no line for it under the recipe's current
version (its hash: the recipe's text and ``--override``), so a changed recipe starts its env
over. Runs go to ``--out/<version>/<env>/seed<N>/<arm>``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from statistics import fmean
from typing import Any

import ledger  # bench/ledger.py, beside this script

from agentgym.registration import load_module
from agentgym.trainers.grpo.advantages import ESTIMATORS

ROOT = Path(__file__).parents[1]
RECIPES = {
    "deep_research": ("deep_research_full_smollm2", ["retrieval_useful", "retrieval_correct"]),
    # the README's first command: not in the matrix; its seeds are run with --env
    "deep_research_one_search": ("deep_research_smollm2", ["retrieval_useful"]),
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
MATRIX = [
    (env, arm, seed)
    for env, arms, seeds in (
        ("deep_research", ("outcome", "sft-only", "turn"), (0, 1, 2)),
        ("retrieval_qa", ("outcome", "sft-only", "intent"), (0, 1, 2)),
        ("keychain", ("outcome", "sft-only"), (0, 1)),
        ("gui", ("outcome", "sft-only"), (0, 1)),
        ("swe", ("outcome", "sft-only"), (0, 1)),
    )
    for seed in seeds
    for arm in arms
]
"""The cells, in the order they are run: per env, seed by seed (a seed's arms share its cold
start)."""


def arms() -> dict[str, list[str]]:
    """The arms: ``ARMS``, and one per registered advantage estimator besides ``grpo`` (a
    user's own with ``--import``), outcome-only as ``outcome`` is."""
    own = {
        name: ["trainer.turn_reward_weight=0", f"trainer.estimator={name}"]
        for name in ESTIMATORS
        if name != "grpo"
    }
    return {**ARMS, **own}


def arm_overrides(env: str, arm: str) -> list[str]:
    parts = RECIPES[env][1]
    credit = [
        f"trainer.turn_reward_parts=[{', '.join(parts)}]",
        f"trainer.turn_reward_weight={TURN_WEIGHT}",
    ]
    return arms()[arm] + (credit if arm in ("turn", "intent", "state") else [])


def version(env: str, overrides: list[str]) -> str:
    """The recipe's version: a hash of its text and of the overrides every cell gets."""
    text = (ROOT / "agentgym" / "conf" / "recipe" / f"{RECIPES[env][0]}.yaml").read_text()
    return hashlib.sha256("\n".join([text, *overrides]).encode()).hexdigest()[:12]


def missing(overrides: list[str], rows: list[dict]) -> list[tuple[str, str, int]]:
    """The matrix's cells the ledger has no line for at their recipe's current version."""
    done = {(r["env"], r["arm"], r["seed"], r["config_hash"]) for r in rows}
    return [c for c in MATRIX if (*c, version(c[0], overrides)) not in done]


class Load:
    """The machine's 1-minute load average, sampled every 30 s while a cell runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(30):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> float:
        self._stop.set()
        return round(fmean(self.samples or [os.getloadavg()[0]]), 2)


def machine(load: float) -> dict[str, Any]:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    return {"cpu": cpu, "cores": os.cpu_count(), "load_avg": load}


def run(env: str, arm: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One cell: its run (from its seed's cold-start model where one is here), then its line."""
    tag = version(env, args.override)
    seed_dir = Path(args.out) / tag / env / f"seed{seed}"
    out = seed_dir / arm
    cmd = [
        sys.executable,
        "-m",
        "agentgym.cli",
        "train",
        f"recipe={RECIPES[env][0]}",
        f"seed={seed}",
        f"out={out}",
        *arm_overrides(env, arm),
        *args.override,
        *([f"import=[{', '.join(args.imports)}]"] if args.imports else []),
    ]
    first = shared_start(seed_dir, out)
    if first is None:
        cmd.append("cold_start.save_model=true")
    else:  # the same cold start: its model, evaluated as this run's start
        cmd += [f"init={first / 'cold_start' / 'model'}", "cold_start.episodes=0"]
    print(f"{env} {arm} seed {seed}: {' '.join(cmd[3:])}", flush=True)
    load, t = Load(), time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    minutes, avg = (time.perf_counter() - t) / 60, load.stop()
    if done.returncode != 0:
        sys.exit(
            f"{env} {arm} seed {seed} failed (nothing written to the ledger):\n"
            f"{done.stderr[-3000:]}"
        )
    start = [e for e in evals(first) if e["phase"] in ("base", "sft")] if first else []
    row = cell_row(env, arm, seed, out, start, args.override)
    return {**row, "config_hash": tag, "minutes": round(minutes, 1), "machine": machine(avg)}


def shared_start(seed_dir: Path, out: Path) -> Path | None:
    """The run of this seed (not ``out``) whose cold-start model is here to start from."""
    runs = (p.parents[1] for p in sorted(seed_dir.glob("*/cold_start/model")))
    return next((run for run in runs if run != out), None)


def evals(out: Path) -> list[dict]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "phase" in r]


def outcomes(out: Path, record: dict) -> dict[str, float]:
    """Task -> success (1/0) of one held-out evaluation of a run."""
    folder = out / "eval" / f"{record['phase']}_step_{record['step']:06d}"
    rows = [json.loads(x) for x in (folder / "trajectories.jsonl").read_text().splitlines()]
    return {str(r["task"]): float(r["success"]) for r in rows if r["stop_reason"] != "error"}


def cell_row(
    env: str, arm: str, seed: int, out: Path, start: list[dict], overrides: list[str]
) -> dict[str, Any]:
    """The ledger's line of a finished run (``start``: the base and cold-start evaluations of
    the run whose cold start it began from, if not its own)."""
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    ev, steps = [r for r in metrics if "phase" in r], [r for r in metrics if "phase" not in r]
    base, sft = (start or ev)[0], next((e for e in start or ev if e["phase"] == "sft"), ev[0])
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    trainer = json.loads((out / "config.json").read_text())["trainer"]
    groups = trainer["tasks_per_step"] * len(steps)
    return {
        "env": env,
        "arm": arm,
        "seed": seed,
        "recipe": RECIPES[env][0],
        "overrides": overrides,
        "arm_overrides": arm_overrides(env, arm),
        "commit": commit.stdout.strip(),
        "date": time.strftime("%Y-%m-%d"),
        "panel": ev[-1].get("eval_panel"),
        "base_reward": base["eval_reward_mean"],
        "base_success": base["eval_success_rate"],
        "sft_reward": sft["eval_reward_mean"],
        "sft_success": sft["eval_success_rate"],
        "final_reward": ev[-1]["eval_reward_mean"],
        "final_success": ev[-1]["eval_success_rate"],
        "evals": [
            {
                "phase": e["phase"],
                "step": e["step"],
                "reward": e["eval_reward_mean"],
                "success": e["eval_success_rate"],
            }
            for e in [*start, *ev]
        ],
        "tasks": outcomes(out, ev[-1]),
        "grpo_steps": len(steps),
        "episodes": groups * trainer["group_size"],
        "tied_group_fraction": round(sum(r["tied_groups"] for r in steps) / max(groups, 1), 3),
        "warnings": sorted({w for r in metrics for w in r.get("warnings", [])}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--next", type=int, help="run the next N cells the ledger lacks")
    parser.add_argument("--env", nargs="+", choices=list(RECIPES), help="or these envs' cells")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", default=["outcome"], help="of: " + ", ".join(arms()))
    parser.add_argument(
        "--import", dest="imports", action="append", default=[], help="a module of estimators"
    )
    parser.add_argument("--out", default="runs/learn")
    parser.add_argument("--override", nargs="*", default=[], help="key=value for every run")
    parser.add_argument("--table", action="store_true", help="render docs/results.md")
    args = parser.parse_args()
    for module in args.imports:
        load_module(module)  # its @estimator rules become arms
    unknown = set(args.arms) - set(arms())
    if unknown:
        parser.error(f"no arm {', '.join(sorted(unknown))}: the arms are {', '.join(arms())}")
    if args.table:
        print(ledger.render(ledger.read()), end="")
        return
    if args.next is not None:
        cells = missing(args.override, ledger.read())[: args.next]
    else:
        cells = [(e, a, s) for e in args.env or [] for s in args.seeds for a in args.arms]
    for env, arm, seed in cells:
        row = run(env, arm, seed, args)
        ledger.append(row)
        print(
            f"{env} {arm} seed {seed}: {row['base_success']:.3f} -> {row['sft_success']:.3f} "
            f"-> {row['final_success']:.3f} in {row['minutes']} min (ledger)",
            flush=True,
        )


if __name__ == "__main__":
    main()
