"""Learner ranks as Ray actors (``learner.ranks``): on a two-node local cluster, rank 0 here and
a sharded rank in an actor train as one process does."""

import json
import os
import subprocess
import sys

import pytest

from agentgym.errors import ConfigError
from agentgym.trainers import ranks
from agentgym.trainers.grpo.config import TrainConfig
from tests.conftest import cluster_actors, train_digits

SMALL = ["trainer.steps=2", "trainer.tasks_per_step=2", "trainer.group_size=4",
         "policy.max_new_tokens=8", "learner.lr=1e-3"]  # fmt: skip


def test_ranks_under_torchrun_are_refused_before_work(monkeypatch, tiny_model):
    from agentgym.trainers.grpo.loop import follow

    monkeypatch.setenv("WORLD_SIZE", "2")
    cfg = TrainConfig.model_validate(
        {"env": {"id": "digits"}, "policy": {"model": str(tiny_model)}, "learner": {"ranks": 2}}
    )
    with pytest.raises(ConfigError, match=r"learner\.ranks"):
        ranks.start(cfg.learner.ranks, False, None, follow, cfg.model_dump(mode="json"))


@pytest.mark.ray
@pytest.mark.slow
def test_a_sharded_learner_rank_in_a_ray_actor_trains_as_one_process(
    two_node_cluster, tiny_model, tmp_path
):
    assert train_digits(tiny_model, tmp_path / "one", *SMALL) == 0
    cmd = [
        sys.executable, "-m", "agentgym.cli", "train", "env=digits", f"policy.model={tiny_model}",
        "policy=hf", "device=cpu", *SMALL, "learner.ranks=2", "learner.fsdp=true",
        f"rollout.ray_address={two_node_cluster}", f"out={tmp_path / 'two'}",
    ]  # fmt: skip
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = (
        [json.loads(x) for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
        for d in ("one", "two")
    )
    assert [r["learner_ranks"] for r in two] == [2, 2] and one[0]["learner_ranks"] == 1
    assert two[0]["reward_mean"] == one[0]["reward_mean"]
    assert two[0]["grad_norm"] == pytest.approx(one[0]["grad_norm"], rel=1e-4)
    assert two[0]["loss"] == pytest.approx(one[0]["loss"], rel=1e-4, abs=1e-7)
    assert all(r["sync_probe_gap"] < 1e-4 for r in two)  # rank 0's sampler got the shards
    assert [n for n, _ in cluster_actors(two_node_cluster)].count("_Rank") == 1
