"""The loss pieces on hand-computed values."""

import math

import pytest
import torch

from agentgym.trainers.grpo.losses import (
    aggregate,
    clipped_pg,
    entropy_from_logits,
    high_entropy_mask,
    importance_ratio,
    kl_penalty,
    truncated_is_weight,
)
from agentgym.trainers.learner import token_logprobs


def t(*xs):
    return torch.tensor([list(xs)], dtype=torch.float64)


def test_clip_higher_is_asymmetric():
    old = t(0.0, 0.0, 0.0, 0.0)
    logp = torch.log(t(1.5, 1.5, 0.5, 0.5))  # ratios 1.5, 1.5, 0.5, 0.5
    adv = t(1.0, -1.0, 1.0, -1.0)
    loss, clipped = clipped_pg(logp, old, adv, clip_low=0.2, clip_high=0.28)
    # A>0, r=1.5: max(-1.5, -1.28) = -1.28 (clipped); A<0, r=1.5: max(1.5, 1.28) = 1.5
    # A>0, r=0.5: max(-0.5, -0.8) = -0.5;               A<0, r=0.5: max(0.5, 0.8) = 0.8 (clipped)
    assert loss[0].tolist() == pytest.approx([-1.28, 1.5, -0.5, 0.8])
    assert clipped[0].tolist() == [True, False, False, True]


def test_dual_clip_caps_negative_advantages():
    loss, _ = clipped_pg(torch.log(t(5.0)), t(0.0), t(-1.0), 0.2, 0.28, dual_clip=3.0)
    assert loss.item() == pytest.approx(3.0)  # min(max(5, 1.28), 3)
    loss, _ = clipped_pg(torch.log(t(5.0)), t(0.0), t(1.0), 0.2, 0.28, dual_clip=3.0)
    assert loss.item() == pytest.approx(-1.28)  # untouched for A > 0


def test_kl_estimators():
    logp, ref = t(math.log(0.5)), t(math.log(0.25))
    lr = math.log(2.0)
    assert kl_penalty(logp, ref, "k1").item() == pytest.approx(lr)
    assert kl_penalty(logp, ref, "k2").item() == pytest.approx(0.5 * lr**2)
    assert kl_penalty(logp, ref, "k3").item() == pytest.approx(0.5 + lr - 1.0)
    assert kl_penalty(logp, logp, "k3").item() == 0.0


def test_truncated_importance_weight():
    w = truncated_is_weight(t(0.0, 0.0, math.log(4.0)), t(0.0, math.log(2.0), 0.0), cap=2.0)
    assert w[0].tolist() == pytest.approx([1.0, 0.5, 2.0])


def test_aggregation_and_mask_denominator():
    loss = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert aggregate(loss, mask, "token_mean", 3, 2).item() == pytest.approx(7 / 3)
    assert aggregate(loss, mask, "seq_mean_token_sum", 3, 2).item() == pytest.approx((3 + 4) / 2)
    assert aggregate(loss, mask, "seq_mean_token_mean", 3, 2).item() == pytest.approx((1.5 + 4) / 2)
    # split into micro-batches with batch-wide denominators: the same total
    parts = sum(aggregate(loss[i : i + 1], mask[i : i + 1], "token_mean", 3, 2) for i in (0, 1))
    assert parts.item() == pytest.approx(7 / 3)


def test_entropy_and_top_fraction_mask():
    logits = torch.tensor([[[0.0, 0.0], [10.0, 0.0], [0.0, 0.0], [5.0, 0.0]]])
    ent = entropy_from_logits(logits)
    assert ent[0, 0].item() == pytest.approx(math.log(2))
    mask = torch.tensor([[1.0, 1.0, 0.0, 1.0]])
    kept = high_entropy_mask(ent, mask, top_fraction=0.34)
    assert kept[0].tolist() == [1.0, 0.0, 0.0, 0.0]


def test_token_logprobs_and_chunked_entropy_match_log_softmax():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 7, requires_grad=True)
    ids = torch.randint(0, 7, (3, 5))
    want = torch.log_softmax(logits, -1).gather(2, ids[..., None])[..., 0]
    got = token_logprobs(logits, ids)
    assert torch.allclose(got, want, atol=1e-6)
    (g_want,) = torch.autograd.grad(want.sum(), logits)
    (g_got,) = torch.autograd.grad(got.sum(), logits)
    assert torch.allclose(g_got, g_want, atol=1e-6)
    logp = torch.log_softmax(logits.detach(), -1)
    full = -(logp.exp() * logp).sum(-1)
    assert torch.allclose(entropy_from_logits(logits, chunk=4), full, atol=1e-6)  # 15 rows
    where = torch.rand(3, 5) > 0.5  # only where the loss is; 0 elsewhere
    got = entropy_from_logits(logits, where, chunk=2)
    assert torch.allclose(got, torch.where(where, full, 0.0), atol=1e-6)


def test_sequence_ratio_is_gspos_hand_computed():
    # one sequence, three tokens, the loss covers the last two: log ratios 0.1 and 0.3
    logp = torch.tensor([[0.5, -1.0, -2.0]], requires_grad=True)
    old = torch.tensor([[0.0, -1.1, -2.3]])
    mask = torch.tensor([[0.0, 1.0, 1.0]])
    token = importance_ratio(logp, old, mask, "token")
    assert token[0].tolist() == pytest.approx([math.exp(0.5), math.exp(0.1), math.exp(0.3)])
    seq = importance_ratio(logp, old, mask, "sequence")
    assert seq[0].tolist() == pytest.approx([math.exp(0.2)] * 3)  # s = exp(mean(0.1, 0.3))
    # GSPO's gradient: d(s * A)/d logp_t = A * s / |y| for each covered token, 0 elsewhere
    adv = torch.tensor([[2.0, 2.0, 2.0]])
    loss, _ = clipped_pg(logp, old, adv, 0.2, 0.28, ratio=seq)
    ((loss * mask).sum() / mask.sum()).backward()
    s = math.exp(0.2)
    assert logp.grad[0].tolist() == pytest.approx([0.0, -2.0 * s / 2, -2.0 * s / 2], rel=1e-5)
