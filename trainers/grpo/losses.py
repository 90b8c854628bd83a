"""The GRPO loss, token by token. Every function takes and returns torch tensors shaped
``[batch, tokens]`` and is tested on hand-computed values in ``tests/trainers``.

Per sampled token (``mask == 1``), with ``r = exp(logp - old_logp)``::

    pg   = max(-A r, -A clip(r, 1 - clip_low, 1 + clip_high))      clip-higher (DAPO)
    pg   = min(pg, -A dual_clip)          where A < 0                dual clip (optional)
    loss = tis * pg + kl_coef * KL(logp, ref_logp)

``tis = min(exp(old_logp - sampler_logp), tis_cap)`` is the truncated importance weight that
corrects the gap between the sampler and the learner: at the same weights (vLLM's kernels
against the learner's), and when sampling ran ahead (``max_off_policy_steps``) between the
older weights that sampled a token and the learner's before this update, which ``old_logp``
is (the decoupled PPO objective of AReaL, with the behaviour policy's weight truncated).
"""

from __future__ import annotations

from typing import Any, Literal

LossAgg = Literal["token_mean", "seq_mean_token_sum", "seq_mean_token_mean"]
KLEstimator = Literal["k1", "k2", "k3"]
RatioLevel = Literal["token", "sequence"]


def _torch() -> Any:
    import torch

    return torch


def importance_ratio(logp: Any, old_logp: Any, mask: Any, level: RatioLevel = "token") -> Any:
    """The policy ratio of every token: its own ``exp(logp - old)`` (PPO, GRPO), or its
    sequence's ``s_i = exp(mean_t (logp - old))`` over the tokens the loss covers (GSPO,
    Zheng et al. 2025), whose gradient reaches every token of the sequence through the mean."""
    torch = _torch()
    log_ratio = logp - old_logp
    if level == "token":
        return torch.exp(log_ratio)
    per_seq = (log_ratio * mask).sum(-1, keepdim=True) / mask.sum(-1, keepdim=True).clamp(min=1)
    return torch.exp(per_seq).expand_as(logp)


def clipped_pg(
    logp: Any,
    old_logp: Any,
    adv: Any,
    clip_low: float,
    clip_high: float,
    dual_clip: float | None = None,
    ratio: Any = None,
) -> tuple[Any, Any]:
    """Per-token clipped policy-gradient loss, and where clipping was active (bool);
    ``ratio`` (see ``importance_ratio``) defaults to the token's own."""
    torch = _torch()
    ratio = torch.exp(logp - old_logp) if ratio is None else ratio
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    loss = torch.maximum(unclipped, clipped)
    was_clipped = clipped > unclipped
    if dual_clip is not None:
        capped = torch.minimum(loss, -adv * dual_clip)
        loss = torch.where(adv < 0, capped, loss)
    return loss, was_clipped


def kl_penalty(logp: Any, ref_logp: Any, estimator: KLEstimator) -> Any:
    """Per-token estimate of KL(policy || reference) from samples of the policy (Schulman)."""
    torch = _torch()
    log_ratio = logp - ref_logp
    if estimator == "k1":
        return log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio**2
    return torch.exp(-log_ratio) + log_ratio - 1.0


def truncated_is_weight(old_logp: Any, sampler_logp: Any, cap: float) -> Any:
    """``min(exp(old_logp - sampler_logp), cap)``, detached: corrects sampler/learner mismatch."""
    torch = _torch()
    return torch.clamp(torch.exp(old_logp - sampler_logp), max=cap).detach()


def aggregate(loss: Any, mask: Any, agg: LossAgg, total_tokens: float, total_seqs: float) -> Any:
    """Sum a micro-batch's share of the batch loss; the mask drives the denominator.

    ``total_tokens``/``total_seqs`` are counts over the whole batch, so that summing this over
    micro-batches gives the batch loss exactly, however the batch was split.
    """
    masked = loss * mask
    if agg == "token_mean":
        return masked.sum() / max(total_tokens, 1.0)
    per_seq = masked.sum(dim=-1)
    if agg == "seq_mean_token_mean":
        per_seq = per_seq / mask.sum(dim=-1).clamp(min=1.0)
    return per_seq.sum() / max(total_seqs, 1.0)


def high_entropy_mask(entropy: Any, mask: Any, top_fraction: float) -> Any:
    """Keep the ``top_fraction`` highest-entropy sampled tokens (the "80/20" forking tokens)."""
    torch = _torch()
    values = entropy[mask.bool()]
    if values.numel() == 0:
        return mask
    threshold = torch.quantile(values.float(), 1.0 - top_fraction)
    return mask * (entropy >= threshold).to(mask.dtype)


def entropy_from_logits(logits: Any, where: Any = None, chunk: int = 1024) -> Any:
    """Per-position entropy of the softmax of ``logits`` (no gradient), only where ``where``
    (a mask of ``logits.shape[:-1]``) is set, 0 elsewhere; ``chunk`` positions at a time so
    that its temporaries stay small."""
    torch = _torch()
    flat = logits.detach().reshape(-1, logits.shape[-1])
    out = torch.zeros(flat.shape[0], dtype=torch.float32, device=logits.device)
    rows = (
        torch.arange(flat.shape[0], device=logits.device)
        if where is None
        else where.reshape(-1).nonzero().squeeze(1)
    )
    with torch.no_grad():
        for i in range(0, rows.shape[0], chunk):
            r = rows[i : i + chunk]
            logp = torch.log_softmax(flat[r].float(), dim=-1)
            out[r] = -(logp.exp() * logp).sum(dim=-1)
    return out.reshape(logits.shape[:-1])
