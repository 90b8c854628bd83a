"""Environments in Ray actors on a local Ray cluster (marker ``ray``)."""

import asyncio
import json
import os
from pathlib import Path

import pytest

from agentgym.cli import main
from agentgym.policies.scripted import ScriptedPolicy
from agentgym.rollout import EnvPool, RolloutSettings, env_factory, read_trajectories, rollout

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
    # the transcript is kept on this side from each step's new messages (the actor no
    # longer ships the whole history every step): it is the environment's own
    main(["eval", "env=count_import", "import=agentgym_testplugin", "episodes=8",
          "group_size=2", f"out={tmp_path / 'local'}"])  # fmt: skip
    local = {t.key: t for t in read_trajectories(tmp_path / "local" / "trajectories.jsonl")}
    for t in trajs:
        assert t.messages == local[t.key].messages and len(t.messages) > 2


@pytest.mark.ray
@pytest.mark.slow
def test_a_pool_of_ray_environments_keeps_its_actors_across_rollouts(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", f"{PLUGIN}:{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.syspath_prepend(str(PLUGIN))
    from agentgym_testplugin import CountEnv

    pool = EnvPool(env_factory("count_import", {}, ["agentgym_testplugin"], "ray"))
    policy = ScriptedPolicy(CountEnv.oracle)
    settings = RolloutSettings(concurrency=2)

    async def two_steps() -> list[set[int]]:
        try:
            steps = [await rollout(pool, policy, [s, s + 1], 2, settings) for s in (0, 2)]
        finally:
            await pool.aclose()
        return [{t.info["pid"] for t in trajs} for trajs in steps]

    first, second = asyncio.run(two_steps())
    assert os.getpid() not in first and second <= first  # the same actor processes
