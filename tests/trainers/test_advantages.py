"""Advantages on hand-computed cases."""

import math
import random
from statistics import fmean, stdev

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
    assert GRPOConfig(estimator="rloo").scale_rewards == "none"  # unscaled, as its paper
    assert GRPOConfig(estimator="rloo", scale_rewards="group").scale_rewards == "group"


def test_a_users_estimator_registers_by_import_and_the_help_lists_every_one(
    median_module, tiny_model, tmp_path
):
    from agentgym.cli.show import config_help
    from agentgym.errors import ConfigError, DeprecatedSpelling
    from agentgym.trainers.grpo.config import TrainConfig, load_train_config

    base = [f"policy.model={tiny_model}", "policy=hf", f"out={tmp_path / 'run'}"]
    with pytest.raises(ConfigError, match=r"trainer.estimator.*'median'.*registered: grpo, rloo"):
        load_train_config([*base, "trainer.estimator=median"])
    assert "(one of: grpo, rloo)" in config_help([("", TrainConfig)])
    cfg = load_train_config([*base, f"import={median_module}", "trainer.estimator=median"])
    assert (cfg.trainer.estimator, cfg.trainer.scale_rewards) == ("median", "none")
    assert "(one of: grpo, median, rloo)" in config_help([("", TrainConfig)])
    # its rule, hand-computed: median of 0, 0, 1 is 0; a tied group is still 0
    g = group_advantages([0.0, 0.0, 1.0, 2.0, 2.0], list("aaabb"), "none", "median")
    assert g.advantages == [0.0, 0.0, 1.0, 0.0, 0.0] and g.tied_groups == 1
    with pytest.warns(DeprecatedSpelling, match="trainer.advantage= is spelled trainer.estimator="):
        assert load_train_config([*base, "trainer.advantage=rloo"]).trainer.estimator == "rloo"


def _decision_drift(
    search_earns: float, gamma: float, noise: bool = False, groups: int = 3000
) -> tuple[float, float]:
    """The expected policy gradient on "go on" of GRPO with turn credit (``turn`` keys: the
    same task's turns at the same index), Monte Carlo, and its standard error.

    Each episode searches with probability 1/2 at each of up to 3 decisions, then answers; its
    outcome (success 1/2) does not depend on how long it went, and each search turn earns
    ``search_earns`` as its turn part (``noise``: every turn also earns 0 or 1 by a coin that
    does not depend on the action, as a format part of a model that errs at random). The
    gradient of log pi(action) in the logit of "search" is 1/2 for a search and -1/2 for an
    answer, so an estimator that does not pay for length has drift 0; a search that earns
    pulls it up."""
    rng = random.Random(0)
    drifts = []
    for g in range(groups):
        episodes = []
        for _ in range(8):
            searches = next((k for k in range(3) if rng.random() < 0.5), 3)
            episodes.append((searches, float(rng.random() < 0.5)))
        ga = group_advantages([r for _, r in episodes], [g] * 8)
        coin = (lambda: float(rng.random() < 0.5)) if noise else (lambda: 0.0)
        parts = [[search_earns + coin() for _ in range(k)] + [coin()] for k, _ in episodes]
        keys = [[(g, t) for t in range(k + 1)] for k, _ in episodes]
        credit = turn_advantages(parts, keys, gamma)
        for (k, _), adv, turns in zip(episodes, ga.advantages, credit, strict=True):
            score = [0.5] * k + ([-0.5] if k < 3 else [])  # the decisions taken
            drifts.append(sum((adv + 0.5 * b) * s for b, s in zip(turns, score, strict=False)))
    return fmean(drifts), stdev(drifts) / len(drifts) ** 0.5


@pytest.mark.parametrize("gamma", [0.0, 0.9])
def test_turn_credit_does_not_pay_for_length_when_extra_turns_earn_nothing(gamma):
    """verl's RFC #7244: turn returns normalised per turn index, with a baseline that depends
    on the episode's own stopping turn, pay a hidden bonus for going on. Ours compares a turn
    only with the same task's turns at its index (a baseline of the index, not of the
    episode's length): when going on earns nothing, the gradient on going on is 0; when it
    earns, the same measurement sees it."""
    drift, se = _decision_drift(search_earns=0.0, gamma=gamma)
    assert abs(drift) < 3 * se, (drift, se)
    # every turn earns a part at random (as a format part): still nothing for going on
    # (discounted raw parts paid 33 standard errors for it: the later turns' parts added up)
    drift, se = _decision_drift(search_earns=0.0, gamma=gamma, noise=True)
    assert abs(drift) < 3 * se, (drift, se)
    drift, se = _decision_drift(search_earns=1.0, gamma=gamma)
    assert drift > 10 * se, (drift, se)
