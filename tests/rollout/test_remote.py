"""Environments in Ray actors on a local Ray cluster (marker ``ray``)."""

import asyncio
import json
import os
from pathlib import Path

import pytest

from agentgym.cli import main
from agentgym.policies.scripted import ScriptedPolicy
from agentgym.rollout import EnvPool, RolloutConfig, env_factory, read_trajectories, rollout
from tests.conftest import cluster_actors

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
    settings = RolloutConfig(concurrency=2)

    async def two_steps() -> list[set[int]]:
        try:
            steps = [await rollout(pool, policy, [s, s + 1], 2, settings) for s in (0, 2)]
        finally:
            await pool.aclose()
        return [{t.info["pid"] for t in trajs} for trajs in steps]

    first, second = asyncio.run(two_steps())
    assert os.getpid() not in first and second <= first  # the same actor processes


@pytest.mark.ray
@pytest.mark.slow
def test_train_spreads_its_environments_over_a_two_node_cluster(
    two_node_cluster, tiny_model, tmp_path
):
    import subprocess
    import sys

    cmd = [
        sys.executable, "-m", "agentgym.cli", "train", "env=digits", f"policy.model={tiny_model}",
        "policy=hf", "device=cpu", "trainer.steps=2", "trainer.tasks_per_step=2",
        "trainer.group_size=2", "policy.max_new_tokens=8", "rollout.backend=ray",
        f"rollout.ray_address={two_node_cluster}", "rollout.concurrency=4", f"out={tmp_path}",
    ]  # fmt: skip
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2
    nodes = [node for name, node in cluster_actors(two_node_cluster) if name.endswith("_EnvActor")]
    assert len(nodes) == 4 and len(set(nodes)) == 2  # the env actors ran on both nodes


def test_groups_meet_at_the_ray_nodes_address_when_ray_runs(monkeypatch):
    """Peers in actors on other nodes cannot reach this node's loopback."""
    import sys
    import types

    from agentgym.cluster import meeting_point

    fake = types.SimpleNamespace(
        is_initialized=lambda: True,
        util=types.SimpleNamespace(get_node_ip_address=lambda: "10.1.2.3"),
    )
    monkeypatch.setitem(sys.modules, "ray", fake)
    host, port = meeting_point()
    assert host == "10.1.2.3" and port > 0
    monkeypatch.delitem(sys.modules, "ray")
    assert meeting_point()[0] == "127.0.0.1"  # no Ray here: the processes are this machine's
