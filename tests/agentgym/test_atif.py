"""``agentgym export atif RUN``: every episode an ATIF document that Harbor's own models
accept, with the exact tokens carried (engine episodes and a program's segments alike)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agentgym.cli import main
from tests.conftest import eval_run

HARBOR = Path(__file__).parents[2] / ".cache" / "harbor"
"""harbor's wheel, unpacked by scripts/setup.sh (it asks for Python 3.12; its ATIF models
are plain pydantic and load on 3.11)."""
PROGRAMS = Path(__file__).parents[1] / "gateway" / "programs.py"


@pytest.fixture(scope="module")
def atif_model():
    if not (HARBOR / "harbor").is_dir():
        pytest.skip("harbor is not unpacked in .cache/harbor (bash scripts/setup.sh)")
    sys.path.insert(0, str(HARBOR))
    try:
        from harbor.models.trajectories import Trajectory
    finally:
        sys.path.remove(str(HARBOR))
    return Trajectory


def exported(run: Path) -> list[dict]:
    assert main(["export", "atif", str(run)]) == 0
    docs = [json.loads(p.read_text()) for p in sorted((run / "atif").glob("*.json"))]
    assert docs
    return docs


def test_engine_episodes_export_as_valid_atif_with_their_tokens(atif_model, tiny_model, tmp_path):
    _, trajs = eval_run(tmp_path, "env=guess_number", "policy=hf", f"policy.model={tiny_model}",
                        "policy.max_new_tokens=8", "episodes=3")  # fmt: skip
    for doc, traj in zip(exported(tmp_path), trajs, strict=True):
        atif_model.model_validate(doc)
        agent = [s for s in doc["steps"] if s["source"] == "agent"]
        assert len(agent) == len(traj.turns)
        sampled = [i for s in agent for i in s["metrics"]["completion_token_ids"]]
        assert sampled == [t for t, m in zip(traj.token_ids, traj.loss_mask) if m]
        assert doc["extra"]["agentgym"]["token_ids"] == traj.token_ids


def test_program_episodes_export_with_their_segments(atif_model, tiny_model, tmp_path):
    command = json.dumps([sys.executable, str(PROGRAMS), "twice"])
    program = ["env=harness", "env.task=deep_research", f"env.command={command}"]
    eval_run(tmp_path, *program, "policy=hf", f"policy.model={tiny_model}", "episodes=2")
    for doc in exported(tmp_path):
        atif_model.model_validate(doc)
        (segment,) = doc["extra"]["agentgym"]["segments"]
        assert sum(segment["loss_mask"]) == doc["final_metrics"]["total_completion_tokens"] > 0


def test_a_missing_run_is_named(capsys):
    assert main(["export", "atif", "/nonexistent/run"]) == 2
    assert "no such run directory" in capsys.readouterr().err
