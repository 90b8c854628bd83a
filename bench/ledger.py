"""The learning ledger: ``bench/results/learning.jsonl`` (in git), one line per finished cell
``(env, arm, seed)`` of ``bench/learn.py``'s matrix, and ``docs/results.md`` rendered from it
alone.

A line holds what pairs arms across sessions: the recipe and its hash (arms compare only
within one), the commit, the held-out panel's hash, held-out reward and success at base,
after the cold start, at each evaluation and at the end, every held-out task's final outcome,
GRPO steps, episodes sampled, minutes, tied groups, early warnings, and the machine.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from statistics import fmean
from typing import Any

LEDGER = Path(__file__).parent / "results" / "learning.jsonl"
RESULTS = Path(__file__).parents[1] / "docs" / "results.md"


def read(path: Path = LEDGER) -> list[dict[str, Any]]:
    """Every finished cell, in the order they were written."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append(row: dict[str, Any], path: Path = LEDGER) -> None:
    """Add one finished cell (one line, flushed whole: a killed cell leaves nothing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row, sort_keys=True) + "\n")


def bootstrap(per_seed: list[list[float]], rounds: int = 2000) -> tuple[float, float, float]:
    """Mean and 95% interval of per-task values, resampling seeds, then tasks in each."""
    per_seed = [s for s in per_seed if s]
    if not per_seed:
        return 0.0, 0.0, 0.0
    rng = random.Random(0)
    means = []
    for _ in range(rounds):
        seeds = [per_seed[rng.randrange(len(per_seed))] for _ in per_seed]
        means.append(fmean(x for s in seeds for x in (rng.choice(s) for _ in s)))
    means.sort()
    mean = fmean(x for s in per_seed for x in s)
    return mean, means[int(0.025 * rounds)], means[int(0.975 * rounds) - 1]


def _interval(m: float, lo: float, hi: float, sign: str = "") -> str:
    return f"{m:{sign}.3f} ({lo:{sign}.3f}, {hi:{sign}.3f})"


def _paired(rows: list[dict], controls: list[dict]) -> tuple[float, float, float]:
    """An arm minus a control, task by task within each seed both ran on the same held-out
    panel."""
    by_seed = {(c["seed"], c.get("panel")): c["tasks"] for c in controls}
    pairs = [
        [r["tasks"][t] - theirs[t] for t in r["tasks"] if t in theirs]
        for r in rows
        if (theirs := by_seed.get((r["seed"], r.get("panel")))) is not None
    ]
    return bootstrap(pairs)


def verdict(name: str, m: float, lo: float, hi: float) -> str:
    if lo > 0:
        return f"{name}: ahead by {m:+.3f}, the 95% interval above 0"
    if hi < 0:
        return f"{name}: behind by {m:+.3f}, the 95% interval below 0"
    return f"{name}: {m:+.3f}, not separated (the 95% interval spans 0)"


def env_section(env: str, rows: list[dict]) -> list[str]:
    """One env's cells, a table per recipe version (the newest first; arms compare only
    within one)."""
    newest = list(dict.fromkeys(r["config_hash"] for r in reversed(rows)))
    plain = {r["config_hash"] for r in rows if not r["overrides"]}
    versions = sorted(newest, key=lambda tag: tag not in plain)  # the recipe as it is, first
    out = [f"## {env}", ""]
    for tag in versions:
        out += version_section([r for r in rows if r["config_hash"] == tag])
    words = [
        verdict(f"`{versions[0]}` against `{other}` ({arm})", *_paired(mine, theirs))
        for other in versions[1:]
        for arm in sorted({r["arm"] for r in rows})
        if (mine := [r for r in rows if (r["config_hash"], r["arm"]) == (versions[0], arm)])
        and (theirs := [r for r in rows if (r["config_hash"], r["arm"]) == (other, arm)])
    ]
    if words:
        out += [
            "Recipe versions against each other, paired by task (the same seeds' held-out panels):",
            "",
            *[f"- {w}." for w in words],
            "",
        ]
    return out


def version_section(rows: list[dict]) -> list[str]:
    """One recipe version's cells: per cell, per arm, and arms paired by task."""
    newest = rows[-1]["config_hash"]
    out = [
        f"### Recipe `{rows[-1]['recipe']}` (version `{newest}`, "
        f"{len(rows)} cells; overrides: {' '.join(rows[-1]['overrides']) or 'none'}).",
        "",
        "| seed | arm | base | after cold start | after GRPO | GRPO steps | minutes | commit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["seed"], r["arm"])):
        cells = [
            f"{r[k + '_reward']:.3f} ({r[k + '_success']:.2f})" for k in ("base", "sft", "final")
        ]
        out.append(
            f"| {r['seed']} | {r['arm']} | {' | '.join(cells)} | {r['grpo_steps']} | "
            f"{r['minutes']:.1f} | {r['commit'][:7]} |"
        )
    arms: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        arms[r["arm"]].append(r)
    out += [
        "",
        "Held-out success (mean over seeds and tasks, 95% bootstrap interval):",
        "",
        "| arm | seeds | after GRPO | minus base | minus the cold start |",
        "|---|---|---|---|---|",
    ]
    for arm, rs in arms.items():
        final = bootstrap([list(r["tasks"].values()) for r in rs])
        gains = [
            _interval(*bootstrap([[v - r[k] for v in r["tasks"].values()] for r in rs]), sign="+")
            for k in ("base_success", "sft_success")
        ]
        out.append(f"| {arm} | {len(rs)} | {_interval(*final)} | {' | '.join(gains)} |")
    words = []
    for control in ("outcome", "sft-only"):
        for arm, rs in arms.items():
            if arm != control and control in arms:
                words.append(verdict(f"{arm} against {control}", *_paired(rs, arms[control])))
    if words:
        out += ["", "Paired by task against the controls:", "", *[f"- {w}." for w in words]]
    return [*out, ""]


def render(rows: list[dict], path: Path = RESULTS) -> str:
    """``docs/results.md`` from the ledger's rows alone; returns the text written."""
    by_env: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_env[r["env"]].append(r)
    lines = [
        "# Learning results",
        "",
        "Rendered by `bench/learn.py --table` from `bench/results/learning.jsonl` (the "
        "ledger, in git) alone: nothing here that the ledger does not hold. A cell is one "
        "(env, arm, seed) run of `bench/learn.py`; success is the held-out success rate "
        "at temperature 1, reward and (success) per evaluation. Arms compare only within "
        "one recipe version.",
        "",
    ]
    if not rows:
        lines.append("No cell has finished yet.")
    for env, env_rows in by_env.items():
        lines += env_section(env, env_rows)
    text = "\n".join(lines).rstrip() + "\n"
    path.write_text(text)
    return text
