"""``Sequence``: one trajectory as the learner sees it, whatever the objective."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Sequence:
    """Token ids and everything aligned with them (every list has ``token_ids``' length)."""

    token_ids: list[int]
    loss_mask: list[int]
    """1 on the tokens the loss covers (what the policy sampled), 0 elsewhere."""
    advantages: list[float] = field(default_factory=list)
    sampler_logprobs: list[float] = field(default_factory=list)
    old_logprobs: list[float] = field(default_factory=list)
    """The learner's log-probs at sampling time; empty: taken from the update's own forward."""
    ref_logprobs: list[float] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    """The images whose tokens are in ``token_ids``, in order (vision-language models)."""


def first_trained(loss_mask: list[int]) -> int:
    """Index of the first token the loss covers (the length when none is)."""
    return next((i for i, m in enumerate(loss_mask) if m), len(loss_mask))
