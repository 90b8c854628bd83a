"""Advantages for trajectory-level GRPO, with turn-level credit on top.

Trajectory advantage (one per episode ``i`` in group ``g``, the G rollouts of one task)::

    A_i = (R_i - mean_g(R)) / (std + eps)      std = std_g(R)   scale_rewards="group" (GRPO)
                                               std = std(R)     scale_rewards="batch"
    A_i =  R_i - mean_g(R)                                       scale_rewards="none"  (Dr. GRPO)

``std`` is the sample standard deviation (n - 1), as TRL computes it. A group whose rewards
all tie has A_i = 0 for every member: it carries no signal (DAPO's dynamic sampling drops it).

``estimator="rloo"`` (REINFORCE leave-one-out, Ahmadian et al. 2024) replaces the group mean by
the mean of the *other* members, ``A_i = R_i - mean_{j != i} R_j = G/(G-1) (R_i - mean_g(R))``,
unscaled unless ``scale_rewards`` is set (then divided by the same ``std + eps``).

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
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from statistics import fmean, stdev
from typing import Literal

Scale = Literal["group", "batch", "none"]
Estimator = Literal["grpo", "rloo"]
EPS = 1e-6


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
    estimator: Estimator = "grpo",
) -> GroupAdvantages:
    """Trajectory-level advantages; ``groups[i]`` names the task of trajectory ``i``."""
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    batch_std = _std(rewards)
    adv = [0.0] * len(rewards)
    tied = [False] * len(rewards)
    n_tied = 0
    for idx in members.values():
        rs = [rewards[i] for i in idx]
        mean = fmean(rs)
        is_tied = max(rs) - min(rs) < 1e-12
        n_tied += is_tied
        denom = {"group": _std(rs) + EPS, "batch": batch_std + EPS, "none": 1.0}[scale]
        if estimator == "rloo" and len(idx) > 1:
            denom *= (len(idx) - 1) / len(idx)  # R_i - mean of the others
        for i in idx:
            adv[i] = 0.0 if is_tied else (rewards[i] - mean) / denom
            tied[i] = is_tied
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
