"""vLLM engines as Ray actors (``policy.placement=ray``) on a two-node local cluster: GRPO
trains with them, weights reach them by broadcast, the sync probe passes, and the sampled
log-probs are the model's."""

import json
import os
import subprocess
import sys

import pytest

from agentgym.rollout import read_trajectories
from tests.conftest import check_token_trajectory, cluster_actors


@pytest.mark.ray
@pytest.mark.vllm
@pytest.mark.slow
def test_grpo_with_its_vllm_engine_in_a_ray_actor(two_node_cluster, tiny_model, hf_model, tmp_path):
    pytest.importorskip("vllm")
    cmd = [
        sys.executable, "-m", "agentgym.cli", "train", "env=digits", f"policy.model={tiny_model}",
        "policy=vllm", "policy.placement=ray", f"rollout.ray_address={two_node_cluster}",
        "device=cpu", "trainer.steps=2", "trainer.tasks_per_step=2", "trainer.group_size=2",
        "policy.max_new_tokens=8", "learner.lr=1e-3", f"out={tmp_path}",
    ]  # fmt: skip
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    gaps = [m["sync_probe_gap"] for m in metrics if m.get("sync_probe_gap") is not None]
    assert len(metrics) == 2 and gaps and max(gaps) < 0.05  # the broadcast reached the actor
    for t in read_trajectories(tmp_path / "trajectories" / "step_000000.jsonl"):
        check_token_trajectory(t, hf_model, tol=1e-3)  # sampled by the untrained weights
    names = [name for name, _ in cluster_actors(two_node_cluster)]
    assert any(n.endswith("_EngineActor") for n in names)  # the engine ran in a Ray actor
