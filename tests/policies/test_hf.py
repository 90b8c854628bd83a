import json

import pytest

from agentgym.cli import main
from agentgym.rollout import read_trajectories
from tests.conftest import check_token_trajectory


@pytest.mark.slow
def test_eval_with_hf_policy_and_tiny_model(tiny_model, hf_model, tmp_path):
    code = main(
        [
            "eval",
            "env=guess_number",
            "policy=hf",
            f"policy.model={tiny_model}",
            "policy.max_new_tokens=48",
            "episodes=4",
            "group_size=2",
            f"out={tmp_path}",
        ]
    )
    assert code == 0
    trajs = list(read_trajectories(tmp_path / "trajectories.jsonl"))
    assert len(trajs) == 4 and {t.task for t in trajs} == {0, 1}
    for t in trajs:
        check_token_trajectory(t, hf_model, tol=1e-3)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["mean_sampled_tokens"] > 0 and set(summary["pass_at_k"]) == {"1", "2"}
