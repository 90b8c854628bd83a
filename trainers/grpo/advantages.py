"""Advantages for trajectory-level GRPO, with turn-level credit on top.

Trajectory advantage (one per episode ``i`` in group ``g``, the G rollouts of one task)::

    A_i = (R_i - mean_g(R)) / (std + eps)      std = std_g(R)   scale_rewards="group" (GRPO)
                                               std = std(R)     scale_rewards="batch"
    A_i =  R_i - mean_g(R)                                       scale_rewards="none"  (Dr. GRPO)

``std`` is the sample standard deviation (n - 1), as TRL computes it. A group whose rewards
all tie has A_i = 0 for every member: it carries no signal (DAPO's dynamic sampling drops it).

The estimator (``trainer.estimator``) is the rule that turns one group's rewards into
advantages; each is registered in ``ESTIMATORS`` by ``@estimator(name)``, a user's own from
their module (``import=my_module``):

    grpo   A_i = (R_i - mean_g(R)) / s
    rloo   A_i = (R_i - mean_{j != i} R_j) / s = G/(G-1) (R_i - mean_g(R)) / s
                 (REINFORCE leave-one-out, Ahmadian et al. 2024; unscaled by default: s = 1)

where ``s`` is the ``std + eps`` of ``scale_rewards`` above (1 for ``none``).

Turn-level credit. Let ``r_{i,t}`` be the sum of the chosen reward parts (``turn_parts``) of
turn ``t`` of episode ``i``; with a discount ``gamma`` the turn's return is
``G_{i,t} = sum_{t' >= t} gamma^(t'-t) (r_{i,t'} - mean_key(r))`` (each part centred on its
key's mean first, so that going on earns only what later turns earn above their peers, not
their parts: no length bonus; ``gamma = 0`` keeps ``r_{i,t}``). Returns are
normalised among comparable turns, the turns that share a key (task and turn index, or the
turn's intent label when the environment gives one)::

    B_{i,t} = (G_{i,t} - mean_key(G)) / (std_key(G) + eps)    (0 where the key has one turn
                                                                or its returns all tie)

Every token the policy sampled in turn ``t`` gets ``A_i + w * B_{i,t}``; tokens the environment
or the template wrote get nothing (the loss mask).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from statistics import fmean, stdev
from typing import Literal

Scale = Literal["group", "batch", "none"]
EPS = 1e-6

Rule = Callable[[Sequence[float], float], list[float]]
"""An estimator's rule: one group's rewards (not all equal) and the scale ``s`` -> one
advantage per member."""


@dataclass(frozen=True)
class Estimator:
    """A registered advantage estimator: its rule and the ``scale_rewards`` it uses unless
    the config sets one."""

    rule: Rule
    scale: Scale = "group"


ESTIMATORS: dict[str, Estimator] = {}
"""Every estimator by name: ``trainer.estimator=NAME`` picks one, ``--help`` lists them."""


def estimator(name: str, scale: Scale = "group") -> Callable[[Rule], Rule]:
    """Register the decorated rule as ``trainer.estimator=name``::

        @estimator("median")
        def median_baseline(rewards, s):
            m = statistics.median(rewards)
            return [(r - m) / s for r in rewards]

    Args:
        name: The value of ``trainer.estimator`` that picks it.
        scale: The ``scale_rewards`` it uses unless the config names one.
    """

    def register(rule: Rule) -> Rule:
        ESTIMATORS[name] = Estimator(rule, scale)
        return rule

    return register


@estimator("grpo")
def grpo(rewards: Sequence[float], s: float) -> list[float]:
    """``R_i`` less the group's mean."""
    mean = fmean(rewards)
    return [(r - mean) / s for r in rewards]


@estimator("rloo", scale="none")
def rloo(rewards: Sequence[float], s: float) -> list[float]:
    """``R_i`` less the mean of the other members."""
    total, n = sum(rewards), len(rewards)
    return [(r - (total - r) / (n - 1)) / s for r in rewards]


def _std(xs: Sequence[float]) -> float:
    return stdev(xs) if len(xs) > 1 else 0.0


@dataclass(frozen=True)
class GroupAdvantages:
    """Trajectory advantages and how many groups tied."""

    advantages: list[float]
    tied_groups: int
    groups: int
    tied: list[bool]
    """Per trajectory: whether its group's rewards all tie."""


def group_advantages(
    rewards: Sequence[float],
    groups: Sequence[Hashable],
    scale: Scale = "group",
    estimator: str = "grpo",
) -> GroupAdvantages:
    """Trajectory-level advantages; ``groups[i]`` names the task of trajectory ``i``, and
    ``estimator`` is a name in ``ESTIMATORS``."""
    rule = ESTIMATORS[estimator].rule
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    batch_std = _std(rewards)
    adv = [0.0] * len(rewards)
    tied = [True] * len(rewards)
    n_tied = 0
    for idx in members.values():
        rs = [rewards[i] for i in idx]
        if max(rs) - min(rs) < 1e-12:  # no signal, whatever the rule
            n_tied += 1
            continue
        s = {"group": _std(rs) + EPS, "batch": batch_std + EPS, "none": 1.0}[scale]
        for i, a in zip(idx, rule(rs, s), strict=True):
            adv[i], tied[i] = a, False
    return GroupAdvantages(adv, n_tied, len(members), tied)


def discounted(rewards: Sequence[float], gamma: float) -> list[float]:
    """``G_t = sum_{t' >= t} gamma^(t'-t) r_t'``."""
    out, running = [0.0] * len(rewards), 0.0
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def turn_advantages(
    turn_rewards: Sequence[Sequence[float]],
    turn_keys: Sequence[Sequence[Hashable]],
    gamma: float = 0.0,
) -> list[list[float]]:
    """Per-turn credit ``B_{i,t}``, normalised among turns that share a key.

    With a discount, each turn's part is first centred on its key's mean, then discounted:
    going on adds the later turns' parts *above their keys' means*, never the parts
    themselves, so turns that earn at random (a format part) do not pay for length (verl's
    RFC #7244; ``tests/trainers/test_advantages.py``)."""
    if gamma:
        means = _key_stats(turn_rewards, turn_keys)
        turn_rewards = [
            [r - means[k][0] for r, k in zip(rs, keys, strict=True)]
            for rs, keys in zip(turn_rewards, turn_keys, strict=True)
        ]
    returns = [discounted(rs, gamma) for rs in turn_rewards]
    stats = _key_stats(returns, turn_keys)
    out = []
    for gs, keys in zip(returns, turn_keys, strict=True):
        row = []
        for g, k in zip(gs, keys, strict=True):
            mean, std = stats[k]
            row.append(0.0 if std < 1e-12 else (g - mean) / (std + EPS))
        out.append(row)
    return out


def _key_stats(
    values: Sequence[Sequence[float]], keys: Sequence[Sequence[Hashable]]
) -> dict[Hashable, tuple[float, float]]:
    """(mean, std) of the values that share each key."""
    by_key: dict[Hashable, list[float]] = defaultdict(list)
    for vs, ks in zip(values, keys, strict=True):
        for v, k in zip(vs, ks, strict=True):
            by_key[k].append(v)
    return {k: (fmean(v), _std(v)) for k, v in by_key.items()}


def token_advantages(
    length: int,
    spans: Sequence[tuple[int, int]],
    trajectory_advantage: float,
    turn_credit: Sequence[float],
    weight: float,
) -> list[float]:
    """Advantage of every token of one trajectory (0 outside the sampled spans)."""
    out = [0.0] * length
    for (start, end), credit in zip(spans, turn_credit, strict=True):
        value = trajectory_advantage + weight * credit
        out[start:end] = [value] * (end - start)
    return out


def overlong_penalty(length: int, max_length: int, buffer: int) -> float:
    """DAPO's soft overlong punishment of a response of ``length`` sampled tokens.

    0 up to ``max_length - buffer``, then falling linearly to -1 at ``max_length``, -1 beyond.
    """
    if length <= max_length - buffer:
        return 0.0
    if length <= max_length:
        return (max_length - buffer - length) / buffer
    return -1.0
