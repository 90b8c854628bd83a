"""digits, the trainer's smoke test: reward is the share of digit characters of the reply."""

import pytest

import agentgym


@pytest.mark.parametrize(
    "reply, reward, success",
    [("12345", 1.0, True), ("  42\n", 1.0, True), ("4a", 0.5, False), ("", 0.0, False),
     ("no digits", 0.0, False), ("٣", 1.0, True)],
)  # fmt: skip
def test_reward_is_the_share_of_digits_and_one_turn_ends_it(reply, reward, success):
    env = agentgym.make("digits")
    obs, _ = env.reset(seed=3)
    assert "reply with digits only" in obs.messages[0].content and obs.tools == []
    _, r, terminated, truncated, info = env.step(reply)
    assert r == pytest.approx(reward) and info["success"] is success
    assert terminated and not truncated


def test_a_tool_call_is_not_an_answer():
    env = agentgym.make("digits")
    env.reset(seed=0)
    _, r, terminated, truncated, info = env.step('<tool_call>{"name": "x"}</tool_call>')
    assert info["format_error"] and r < 0 and truncated and not terminated
