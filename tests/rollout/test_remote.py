"""Environments in Ray actors on a local Ray cluster (marker ``ray``)."""

import json
import os
from pathlib import Path

import pytest

from agentgym.cli import main
from agentgym.rollout import read_trajectories

PLUGIN = Path(__file__).parent.parent / "plugin_pkg"


@pytest.mark.ray
@pytest.mark.slow
def test_eval_with_environments_in_ray_actors(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", f"{PLUGIN}:{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.syspath_prepend(str(PLUGIN))
    code = main(
        [
            "eval",
            "env=count_import",
            "import=agentgym_testplugin",
            "episodes=8",
            "group_size=2",
            "rollout.backend=ray",
            "rollout.concurrency=4",
            f"out={tmp_path}",
        ]
    )
    assert code == 0
    trajs = list(read_trajectories(tmp_path / "trajectories.jsonl"))
    assert len(trajs) == 8 and all(t.success for t in trajs)
    pids = {t.info["pid"] for t in trajs}
    assert os.getpid() not in pids and 1 <= len(pids) <= 4  # one actor process per worker
    assert json.loads((tmp_path / "summary.json").read_text())["success_rate"] == 1.0
