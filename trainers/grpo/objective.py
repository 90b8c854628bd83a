"""GRPO's objective over the learner's micro-batch loop: the clipped policy gradient of
``losses.py``, weighted by the truncated importance weight, plus the optional KL term.

Per micro-batch it reports, summed over the tokens the loss covers, ``clip_frac``,
``entropy``, ``kl``, ``tis_mean`` and ``tis_capped_frac`` (the learner divides them by the
batch's tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentgym.trainers.grpo.config import GRPOConfig
from agentgym.trainers.grpo.losses import (
    aggregate,
    clipped_pg,
    entropy_from_logits,
    high_entropy_mask,
    importance_ratio,
    kl_penalty,
    truncated_is_weight,
)
from agentgym.trainers.learner import MicroBatch
from agentgym.trainers.sequence import Sequence


@dataclass(frozen=True)
class GRPOObjective:
    """The GRPO loss of ``cfg`` (``trainer.*``)."""

    cfg: GRPOConfig

    def still(self, seq: Sequence) -> bool:
        """No advantage on any token and no KL: the clipped, importance-weighted policy
        gradient of every token is 0 (a tied group's sequence, in plain GRPO)."""
        return self.cfg.kl_coef == 0 and not any(seq.advantages)

    def loss(self, logp: Any, logits: Any, batch: MicroBatch) -> tuple[Any, dict[str, Any]]:
        import torch

        cfg, mask, start = self.cfg, batch.mask, batch.start
        entropy = torch.nn.functional.pad(  # only where the loss is: no env tokens
            entropy_from_logits(logits, mask[:, start:] > 0), (start, 0)
        )
        train_mask = mask
        if cfg.entropy_top_fraction is not None:
            train_mask = high_entropy_mask(entropy, mask, cfg.entropy_top_fraction)
        # on-policy (one update per batch): the weights have not moved since sampling, so
        # the learner's log-probs at sampling time are these, and no extra forward is run
        old = batch.old if batch.has_old else logp.detach()
        ratio = importance_ratio(logp, old, train_mask, cfg.ratio)
        pg, clipped = clipped_pg(
            logp, old, batch.advantages, cfg.clip_low, cfg.clip_high, cfg.dual_clip, ratio
        )
        tis = truncated_is_weight(old, batch.sampler, cfg.tis_cap)
        per_token = tis * pg
        kl = torch.zeros_like(logp)
        if cfg.kl_coef > 0:
            kl = kl_penalty(logp, batch.ref, cfg.kl_estimator)
            per_token = per_token + cfg.kl_coef * kl
        loss = aggregate(per_token, train_mask, cfg.loss_agg, batch.tokens, batch.sequences)
        stats = {
            "clip_frac": clipped.float(),
            "entropy": entropy,
            "kl": kl.detach(),
            "tis_mean": tis,
            "tis_capped_frac": (tis >= cfg.tis_cap).float(),
            # the learner's arithmetic (bf16) against the sampler's on the sampled tokens (and
            # the versions between them when sampling ahead)
            "sampler_gap": (old - batch.sampler).abs(),
        }
        return loss, {key: (value * mask).sum() for key, value in stats.items()}
