import pytest

from agentgym.rollout import pass_at_k, summarize
from agentgym.types import Message, Trajectory


def test_pass_at_k_hand_computed():
    assert pass_at_k(4, 0, 1) == 0.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - 3 / 6)
    assert pass_at_k(4, 3, 2) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def test_summary():
    def t(task, sample, ok):
        return Trajectory(
            env_id="e",
            task=task,
            sample=sample,
            success=ok,
            reward=float(ok),
            messages=[Message(role="user", content="")],
        )

    s = summarize([t(0, 0, True), t(0, 1, False), t(1, 0, False), t(1, 1, False)])
    assert s["episodes"] == 4 and s["tasks"] == 2
    assert s["mean_reward"] == 0.25 and s["success_rate"] == 0.25
    assert s["pass_at_k"] == {"1": 0.25, "2": 0.5}
