"""From trajectories to learner sequences: rewards, advantages, token-level credit."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable
from dataclasses import dataclass

from agentgym.trainers.grpo.advantages import (
    group_advantages,
    overlong_penalty,
    token_advantages,
    turn_advantages,
)
from agentgym.trainers.grpo.config import GRPOConfig
from agentgym.trainers.sequence import Sequence
from agentgym.types import Segment, Trajectory, Turn


@dataclass
class Batch:
    """The sequences to train on, and what was learned building them."""

    sequences: list[Sequence]
    rewards: list[float]
    tied_groups: int
    groups: int
    skipped: int


def turn_key(traj: Trajectory, index: int, groups: str = "auto") -> Hashable:
    """What turn ``index`` of ``traj`` is compared with in turn-level credit
    (``trainer.turn_groups``): ``turn``, the same task's turns at the same index; ``intent``,
    every turn of the batch with the same intent label (ChatR1; ``turn`` where unlabelled);
    ``state``, the same task's turns that acted on the same observation (GiGPO's anchor
    states: the messages the env answered last); ``auto``, ``intent`` where the env labels
    turns, else ``turn``."""
    if groups == "state":
        seen = traj.turns[index - 1].observation if index else traj.messages[:2]
        text = json.dumps([m.model_dump(mode="json") for m in seen], sort_keys=True)
        return (traj.task, "state", hashlib.sha256(text.encode()).hexdigest())
    intent = traj.turns[index].info.get("intent")
    if groups in ("auto", "intent") and intent is not None:
        return ("intent", intent)
    return (traj.task, index)


def _parts(turn: Turn) -> dict[str, float]:
    """A turn's reward parts and the signals the environment gave beside them."""
    return {**turn.info.get("signals", {}), **turn.reward_parts}


def _segment(segment: Segment, advantage: float) -> Sequence:
    return Sequence(
        token_ids=segment.token_ids,
        loss_mask=segment.loss_mask,
        advantages=[advantage * m for m in segment.loss_mask],
        sampler_logprobs=segment.logprobs,
    )


def build_batch(trajectories: list[Trajectory], cfg: GRPOConfig) -> Batch:
    """Advantages for every trajectory with token ids; tied groups dropped if configured."""
    rewards = [t.reward for t in trajectories]
    if cfg.overlong_max_tokens is not None:
        rewards = [
            r + overlong_penalty(sum(t.loss_mask), cfg.overlong_max_tokens, cfg.overlong_buffer)
            for r, t in zip(rewards, trajectories, strict=True)
        ]
    ga = group_advantages(rewards, [t.task for t in trajectories], cfg.scale_rewards, cfg.estimator)
    credit = turn_advantages(
        [
            [sum(_parts(turn).get(p, 0.0) for p in cfg.turn_reward_parts) for turn in t.turns]
            for t in trajectories
        ],
        [[turn_key(t, i, cfg.turn_groups) for i in range(len(t.turns))] for t in trajectories],
        cfg.turn_discount,
    )
    sequences, skipped = [], 0
    for traj, adv, tied, turn_credit in zip(
        trajectories, ga.advantages, ga.tied, credit, strict=True
    ):
        if traj.attribution_failed or (tied and cfg.skip_tied_groups):
            skipped += 1
            continue
        if traj.segments:  # a program's episode: each segment, the episode's advantage
            sequences += [_segment(s, adv) for s in traj.segments]
            continue
        if not traj.token_ids:
            skipped += 1
            continue
        spans = [turn.token_span or (0, 0) for turn in traj.turns]
        sequences.append(
            Sequence(
                token_ids=traj.token_ids,
                loss_mask=traj.loss_mask,
                advantages=token_advantages(
                    len(traj.token_ids), spans, adv, turn_credit, cfg.turn_reward_weight
                ),
                sampler_logprobs=traj.logprobs,
                images=traj.images,
            )
        )
    return Batch(sequences, rewards, ga.tied_groups, ga.groups, skipped)
