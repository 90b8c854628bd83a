"""Advantages on hand-computed cases."""

import math

import pytest

from agentgym.trainers.grpo.advantages import (
    discounted,
    group_advantages,
    overlong_penalty,
    token_advantages,
    turn_advantages,
)


def test_group_scaling_hand_computed():
    # group a: rewards 1, 0 -> mean 0.5, sample std sqrt(0.5); group b ties
    rewards, groups = [1.0, 0.0, 2.0, 2.0], ["a", "a", "b", "b"]
    g = group_advantages(rewards, groups, "group")
    s = math.sqrt(0.5)
    assert g.advantages == pytest.approx([0.5 / s, -0.5 / s, 0.0, 0.0], rel=1e-5)
    assert (g.tied_groups, g.groups, g.tied) == (1, 2, [False, False, True, True])
    # batch std of [1, 0, 2, 2]: mean 1.25, var = (0.0625+1.5625+0.5625*2)/3
    bstd = math.sqrt((0.0625 + 1.5625 + 0.5625 * 2) / 3)
    assert group_advantages(rewards, groups, "batch").advantages[:2] == pytest.approx(
        [0.5 / bstd, -0.5 / bstd], rel=1e-5
    )
    assert group_advantages(rewards, groups, "none").advantages == [0.5, -0.5, 0.0, 0.0]


def test_discount_and_turn_credit():
    assert discounted([1.0, 0.0, 2.0], 0.5) == [1.5, 1.0, 2.0]
    assert discounted([1.0, 0.0, 2.0], 0.0) == [1.0, 0.0, 2.0]
    # two episodes of one task; turn 0 comparable with turn 0, turn 1 with turn 1
    rewards = [[1.0, 0.0], [0.0, 0.0]]
    keys = [[("t", 0), ("t", 1)], [("t", 0), ("t", 1)]]
    credit = turn_advantages(rewards, keys)
    s = math.sqrt(0.5)
    assert credit[0] == pytest.approx([0.5 / s, 0.0], rel=1e-5)
    assert credit[1] == pytest.approx([-0.5 / s, 0.0], rel=1e-5)
    # with gamma=1 the later turn's zero propagates nothing new; turn 0 returns stay 1 and 0
    assert turn_advantages(rewards, keys, gamma=1.0) == credit
    # an intent key shared across turn indices pools them
    pooled = turn_advantages([[1.0], [0.0, 3.0]], [["ask"], ["ask", "ask"]])
    mean, std = 4 / 3, math.sqrt(((1 - 4 / 3) ** 2 + (4 / 3) ** 2 + (3 - 4 / 3) ** 2) / 2)
    assert pooled[1][1] == pytest.approx((3 - mean) / std, rel=1e-5)


def test_token_advantages_only_on_sampled_spans():
    adv = token_advantages(8, [(2, 4), (6, 8)], 1.0, [0.5, -1.0], weight=0.2)
    assert adv == pytest.approx([0, 0, 1.1, 1.1, 0, 0, 0.8, 0.8])


def test_overlong_penalty():
    assert overlong_penalty(80, 100, 20) == 0.0
    assert overlong_penalty(90, 100, 20) == pytest.approx(-0.5)
    assert overlong_penalty(100, 100, 20) == pytest.approx(-1.0)
    assert overlong_penalty(101, 100, 20) == -1.0


def test_rloo_subtracts_the_mean_of_the_others_hand_computed():
    from agentgym.trainers.grpo.config import GRPOConfig

    # group a: 1, 0, 0 -> 1 - 0 = 1; 0 - (1 + 0) / 2 = -0.5 (twice); group b ties
    rewards, groups = [1.0, 0.0, 0.0, 3.0, 3.0], ["a", "a", "a", "b", "b"]
    g = group_advantages(rewards, groups, "none", "rloo")
    assert g.advantages == pytest.approx([1.0, -0.5, -0.5, 0.0, 0.0])
    # with the group's std: the same, divided by std([1, 0, 0]) = sqrt(1/3)
    scaled = group_advantages(rewards, groups, "group", "rloo").advantages
    assert scaled[:3] == pytest.approx([x / math.sqrt(1 / 3) for x in (1.0, -0.5, -0.5)], rel=1e-5)
    assert GRPOConfig(advantage="rloo").scale_rewards == "none"  # unscaled, as its paper
    assert GRPOConfig(advantage="rloo", scale_rewards="group").scale_rewards == "group"
