"""The learning ledger (``bench/ledger.py``, ``bench/learn.py``): a finished run becomes one
line, a changed recipe makes its env's cells missing again, and ``docs/results.md`` is
rendered from the lines alone, with arms paired task by task."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import learn
import ledger


def finished_run(out: Path, successes: dict[str, list[float]], tied: list[int]) -> None:
    """A run folder as ``agentgym train`` leaves it: config, metrics, held-out episodes."""
    out.mkdir(parents=True)
    trainer = {"tasks_per_step": 4, "group_size": 8}
    (out / "config.json").write_text(json.dumps({"trainer": trainer}))
    lines = []
    for i, (phase, outcome) in enumerate(successes.items()):
        step = 0 if phase in ("base", "sft") else len(tied)
        folder = out / "eval" / f"{phase}_step_{step:06d}"
        folder.mkdir(parents=True)
        rows = [{"task": t, "success": s, "stop_reason": "done"} for t, s in enumerate(outcome)]
        (folder / "trajectories.jsonl").write_text("\n".join(map(json.dumps, rows)))
        mean = sum(outcome) / len(outcome)
        record = {"step": step, "phase": phase, "eval_reward_mean": mean - 0.1 * (i == 0),
                  "eval_success_rate": mean, "eval_panel": "p1", "warnings": []}  # fmt: skip
        lines.append(record)
        if phase == "sft":
            lines += [{"step": s, "tied_groups": n, "warnings": ["w"] * (s == 1)}
                      for s, n in enumerate(tied)]  # fmt: skip
    (out / "metrics.jsonl").write_text("\n".join(map(json.dumps, lines)))


def test_a_finished_run_is_one_line_with_every_task(tmp_path):
    out = tmp_path / "run"
    finished_run(out, {"base": [0, 0, 0, 0], "sft": [1, 0, 0, 0], "step": [1, 1, 0, 1]}, [1, 2])
    row = learn.cell_row("deep_research", "turn", 0, out, [], [])
    assert (row["base_success"], row["sft_success"], row["final_success"]) == (0.0, 0.25, 0.75)
    assert row["tasks"] == {"0": 1.0, "1": 1.0, "2": 0.0, "3": 1.0}
    assert row["grpo_steps"] == 2 and row["episodes"] == 64
    assert row["tied_group_fraction"] == pytest.approx(3 / 8)
    assert row["warnings"] == ["w"] and row["panel"] == "p1"
    assert "trainer.turn_groups=turn" in row["arm_overrides"] and len(row["commit"]) == 40
    assert [e["phase"] for e in row["evals"]] == ["base", "sft", "step"]


def test_a_cell_is_missing_until_its_line_is_written_at_the_recipes_version(tmp_path):
    path = tmp_path / "learning.jsonl"
    first = learn.MATRIX[0]
    tag = learn.version(first[0], [])
    assert learn.missing([], ledger.read(path))[0] == first
    ledger.append({"env": first[0], "arm": first[1], "seed": first[2], "config_hash": tag}, path)
    assert learn.missing([], ledger.read(path))[0] == learn.MATRIX[1]
    # another recipe version (here: an override every cell gets): the env starts over
    assert learn.missing(["learner.lr=1e-4"], ledger.read(path))[0] == first
    assert learn.version(first[0], ["learner.lr=1e-4"]) != tag


def test_results_page_comes_from_the_ledger_with_arms_paired_by_task(tmp_path):
    rows = []
    for seed in (0, 1):
        for arm, final in (("outcome", [1.0] * 30 + [0.0] * 2), ("sft-only", [0.0] * 32)):
            rows.append({
                "env": "keychain", "arm": arm, "seed": seed, "config_hash": "v1",
                "recipe": "keychain_smollm2", "overrides": [], "commit": "a" * 40,
                "minutes": 20.0, "grpo_steps": 12, "base_reward": 0.0, "base_success": 0.0,
                "sft_reward": 0.1, "sft_success": 0.1, "final_reward": sum(final) / 32,
                "final_success": sum(final) / 32,
                "tasks": {str(t): v for t, v in enumerate(final)},
            })  # fmt: skip
    stale = {**rows[0], "config_hash": "v0", "arm": "turn"}
    text = ledger.render([stale, *rows], tmp_path / "results.md")
    assert "outcome against sft-only: ahead by +0.938, the 95% interval above 0" in text
    assert "sft-only against outcome: behind" in text
    # an older recipe version's cells: a table of their own, after the newest, not compared
    assert text.index("version `v1`, 4 cells") < text.index("version `v0`, 1 cells")
    assert "turn against" not in text
    assert ledger.render([], tmp_path / "empty.md").endswith("No cell has finished yet.\n")


def test_every_registered_estimator_is_an_arm(median_module):
    assert learn.arm_overrides("retrieval_qa", "rloo") == [
        "trainer.turn_reward_weight=0",
        "trainer.estimator=rloo",
    ]
    assert "median" not in learn.arms()
    learn.load_module(median_module)  # as --import loads it
    assert learn.arms()["median"][-1] == "trainer.estimator=median"


def test_a_later_arm_starts_from_its_seeds_cold_start_model(tmp_path):
    seed = tmp_path / "seed0"
    assert learn.shared_start(seed, seed / "outcome") is None  # the first arm runs its own
    (seed / "outcome" / "cold_start" / "model").mkdir(parents=True)
    assert learn.shared_start(seed, seed / "sft-only") == seed / "outcome"
    assert learn.shared_start(seed, seed / "outcome") is None  # not its own
