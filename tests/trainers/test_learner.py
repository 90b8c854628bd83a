import asyncio
import copy

import pytest
import torch

from agentgym.policies.base import SamplingConfig
from agentgym.policies.hf import HFPolicy
from agentgym.trainers.config import LearnerConfig, LoRAConfig
from agentgym.trainers.grpo.config import GRPOConfig
from agentgym.trainers.grpo.objective import GRPOObjective
from agentgym.trainers.grpo.sync import SyncError, probe
from agentgym.trainers.learner import Learner
from agentgym.trainers.microbatch import pack
from agentgym.trainers.sequence import Sequence

GRPO = GRPOObjective(GRPOConfig())


def test_pack_respects_the_token_budget():
    lengths = [100, 30, 90, 10, 60]
    batches = pack(lengths, budget=200)
    assert sorted(i for b in batches for i in b) == list(range(5))
    for b in batches:
        assert len(b) * max(lengths[i] for i in b) <= 200 or len(b) == 1


def test_a_cpu_learner_forwards_one_sequence_at_a_time_with_the_same_logprobs(tiny_model):
    """No padding and no attention mask on a CPU (SDPA's causal kernel, bench/learner.py)
    for sequences with enough work; the log-probs equal the padded micro-batches' and the
    update's statistics agree."""
    from agentgym.trainers.microbatch import SOLO_WORK

    learner = Learner(str(tiny_model), LearnerConfig(lr=1e-9), device="cpu")
    assert Learner.__bases__ == (object,)  # composed of its parts, not a mixin
    assert learner.plan.solo_work == SOLO_WORK  # the CPU's plan; the update walks any plan
    rows = [([1] * n, []) for n in (8, 7, 6)]
    budget = learner.cfg.micro_batch_tokens
    assert learner.plan.batches(rows, budget) == [[0, 1, 2]]  # the tiny model's: batched
    learner.plan.solo_work = 0  # every sequence alone
    assert sorted(learner.plan.batches(rows, budget)) == [[0], [1], [2]]
    ids = [[5, 6, 7, 8, 9, 10, 11, 12], [5, 6, 7, 30, 31], [9, 8, 7, 6, 5, 4]]
    single = learner.logprobs(ids)
    learner.plan.solo_work = None
    padded = learner.logprobs(ids)
    for a, b in zip(single, padded, strict=True):
        assert a == pytest.approx(b, abs=1e-5)
    seqs = [Sequence(x, [0, 0] + [1] * (len(x) - 2), [1.0] * len(x), [-1.0] * len(x)) for x in ids]
    stats = {}
    for work in (0, None):
        learner.plan.solo_work = work
        stats[work] = learner.update(copy.deepcopy(seqs), GRPO)
    for key in ("loss", "entropy", "clip_frac", "trained_tokens"):
        assert stats[0][key] == pytest.approx(stats[None][key], rel=1e-4, abs=1e-6), key


def test_a_groups_episodes_that_played_alike_share_one_forward(tiny_model, monkeypatch):
    """Identical sequences (a group whose episodes wrote the same tokens) go through one
    forward, expanded: log-probs, statistics and weights equal separate forwards'."""
    a, b = [5, 6, 7, 8, 9, 10, 11, 12], [5, 6, 7, 30, 31, 32, 33]
    learners = [Learner(str(tiny_model), LearnerConfig(lr=1e-2), device="cpu") for _ in "ab"]
    seqs = [seq(learners[0], x, adv) for x, adv in ((a, 1.0), (a, 0.5), (b, -1.0), (a, 0.0))]
    forwards, grads = [], []
    learners[0].model.register_forward_hook(lambda m, args, out: forwards.append(1))
    clip = torch.nn.utils.clip_grad_norm_  # the gradients each step takes
    monkeypatch.setattr(
        torch.nn.utils,
        "clip_grad_norm_",
        lambda ps, c: grads.append([p.grad.clone() for p in ps]) or clip(ps, c),
    )
    learners[0].plan.solo_work = 0  # alone, with its duplicates: [a, a] moving, [b], [a] still
    stats = [learner.update(copy.deepcopy(seqs), GRPO) for learner in learners]
    assert len(forwards) == 3
    for key in stats[0]:
        assert stats[0][key] == pytest.approx(stats[1][key], rel=1e-4, abs=1e-6), key
    for x, y in zip(*grads, strict=True):
        assert torch.allclose(x, y, rtol=1e-4, atol=1e-7)
    forwards.clear()
    many = learners[0].logprobs([a, b, a, a])
    assert len(forwards) == 2 and many[0] == many[2] == many[3]
    assert many[1] == pytest.approx(learners[0].logprobs([b])[0], abs=1e-6)


def test_logprobs_from_a_start_match_the_full_forward(tiny_model):
    learner = Learner(str(tiny_model), LearnerConfig(), device="cpu")
    ids = [[5, 6, 7, 8, 9, 10, 11, 12], [5, 6, 7, 30, 31, 32]]
    full = learner.logprobs(ids)
    for work in (0, None):  # one by one (CPU); one micro-batch: computed from token 4
        learner.plan.solo_work = work
        part = learner.logprobs(ids, starts=[4, 5])
        for f, p, s in zip(full, part, [4, 4 if work is None else 5], strict=True):
            assert p[:s] == [0.0] * s
            assert p[s:] == pytest.approx(f[s:], abs=1e-5)
    assert full[0][0] == 0.0 and all(x < 0 for x in full[0][1:])


def seq(learner, ids, adv):
    mask = [0] * 4 + [1] * (len(ids) - 4)
    old = learner.logprobs([ids])[0]
    return Sequence(ids, mask, [adv * m for m in mask], sampler_logprobs=old, old_logprobs=old)


def test_update_favours_positive_advantage_tokens(tiny_model):
    learner = Learner(str(tiny_model), LearnerConfig(lr=1e-3), device="cpu")
    good, bad = [5, 6, 7, 8, 9, 10, 11, 12], [5, 6, 7, 8, 20, 21, 22, 23]
    before = [sum(learner.logprobs([x])[0][4:]) for x in (good, bad)]
    stats = learner.update([seq(learner, good, 1.0), seq(learner, bad, -1.0)], GRPO)
    after = [sum(learner.logprobs([x])[0][4:]) for x in (good, bad)]
    assert after[0] - after[1] > before[0] - before[1] + 0.5
    assert stats["trained_tokens"] == 8 and stats["tis_mean"] == pytest.approx(1.0)


def test_a_cancelled_update_stops_at_its_next_forward_and_steps_nothing(tiny_model):
    """SIGTERM cancels the run's task; the update in the torch thread stops at its next
    forward instead of running to its end (a train went on for two minutes after SIGTERM)."""
    import asyncio
    import time

    from agentgym._compute import run_torch

    learner = Learner(str(tiny_model), LearnerConfig(lr=1e-2, micro_batch_tokens=64), "cpu")
    seqs = [seq(learner, list(range(5 + i, 45 + i)), (-1.0) ** i) for i in range(8)]
    before = [p.detach().clone() for p in learner.model.parameters()]
    forwards: list[float] = []
    real = learner._forward

    def forward(*args, **kwargs):
        forwards.append(time.monotonic())
        out = real(*args, **kwargs)
        if len(forwards) == 1:
            time.sleep(0.5)  # the caller is cancelled meanwhile
        return out

    learner._forward = forward

    async def cancelled_update() -> None:
        task = asyncio.ensure_future(run_torch(learner.update, seqs, GRPO))
        while not forwards:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await run_torch(lambda: None)  # the torch thread is free again

    asyncio.run(cancelled_update())
    assert len(forwards) == 2  # the first micro-batch's, then the one that stopped
    assert all(torch.equal(a, b) for a, b in zip(before, learner.model.parameters()))
    learner._forward = real
    assert learner.update(seqs[:2], GRPO)["trained_tokens"] > 0  # and it trains on after


def plan(learner, seqs, objective):
    rows = [(s.token_ids, s.images) for s in seqs]
    still = [objective.still(s) for s in seqs]
    return learner.plan.for_update(rows, still, learner.cfg.micro_batch_tokens)


class Moving(GRPOObjective):
    """GRPO with every sequence taking its backward (as before ``still``)."""

    def still(self, seq):
        return False


def test_a_tied_groups_sequences_take_no_backward_and_the_step_is_the_same(tiny_model):
    """Plain GRPO gives a sequence with no advantage a zero gradient: the learner runs its
    forward for the statistics only. The weights after two steps (the second all tied: AdamW's
    moments move them anyway) and every statistic equal a learner that backwards them all."""
    ids = [[5, 6, 7, 8, 9, 10, 11, 12], [5, 6, 7, 8, 20, 21, 22], [9, 8, 7, 6, 5, 4, 3, 2, 1]]
    learners = [Learner(str(tiny_model), LearnerConfig(lr=1e-2), device="cpu") for _ in "ab"]
    seqs = [seq(learners[0], x, a) for x, a in zip(ids, (1.0, 0.0, 0.0), strict=True)]
    assert [still for _, still in plan(learners[0], seqs, GRPO)] == [False, True]
    tied = [seq(learners[0], x, 0.0) for x in ids]
    stats = [
        [learner.update(copy.deepcopy(batch), objective) for batch in (seqs, tied)]
        for learner, objective in zip(learners, (GRPO, Moving(GRPOConfig())), strict=True)
    ]
    for ours, theirs in zip(*stats, strict=True):
        assert ours.keys() == theirs.keys()
        assert ours.pop("flops") < theirs.pop("flops")  # forwards without their backward
        for key in ours:
            assert ours[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-7), key
    assert stats[0][1]["grad_norm"] == 0.0
    a, b = (dict(learner.model.named_parameters()) for learner in learners)
    assert all(torch.equal(a[name], b[name]) for name in a)
    kl = GRPOObjective(GRPOConfig(kl_coef=0.1))
    assert not any(still for _, still in plan(learners[0], tied, kl))


def test_lora_trains_adapters_only_and_exports_merged_weights(tiny_model, tmp_path):
    cfg = LearnerConfig(lr=1e-2, precision="fp32", lora=LoRAConfig(rank=4))
    learner = Learner(str(tiny_model), cfg, device="cpu")
    full = Learner(str(tiny_model), LearnerConfig(), device="cpu")
    assert learner.trainable_parameters < full.trainable_parameters / 5
    ids = [5, 6, 7, 8, 9, 10, 11, 12]
    learner.update([seq(learner, ids, 1.0)], GRPO)
    learner.weights.export(tmp_path)
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        want = torch.tensor(learner.logprobs([ids])[0][1:])
        logits = merged(torch.tensor([ids])).logits[0, :-1]
        got = torch.log_softmax(logits, -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
    assert torch.allclose(got, want, atol=1e-4)
    assert not merged.config.tie_word_embeddings  # see Learner.export


def test_a_bf16_lora_learner_is_sampled_by_its_float32_merge_within_the_probes_tolerance(
    tiny_model, tmp_path
):
    """LoRA computed in bf16 (the README recipe's learner on this CPU), its merged weights in a
    float32 sampler (``sampler_dtype``, what a CPU vLLM engine runs): the sampler's log-probs
    differ from the learner's by bf16's rounding, far below the sync probe's tolerance (0.05)
    and far below what the update itself moved; the probe, computing as the sampler does,
    sees no gap at all."""
    from transformers import AutoModelForCausalLM

    cfg = LearnerConfig(lr=1e-2, precision="bf16", lora=LoRAConfig(rank=4))
    learner = Learner(str(tiny_model), cfg, device="cpu")
    assert (
        learner.compute_dtype == torch.bfloat16 and learner.weights.sampler_dtype == torch.float32
    )
    ids = [5, 6, 7, 8, 9, 10, 11, 12]
    before = torch.tensor(learner.logprobs([ids])[0][1:])
    learner.update([seq(learner, ids, 1.0)], GRPO)
    learner.weights.export(tmp_path)
    merged = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
    with torch.no_grad():
        want = torch.tensor(learner.logprobs([ids])[0][1:])
        logits = merged(torch.tensor([ids])).logits[0, :-1]
        got = torch.log_softmax(logits, -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
    gap, moved = (got - want).abs().mean(), (want - before).abs().mean()
    assert 0 < gap < 0.05 and moved > 5 * gap, (gap, moved)
    # the sync probe computes the learner as the sampler does: the weights arrived, exactly
    from transformers import AutoTokenizer

    sampler = HFPolicy(merged, AutoTokenizer.from_pretrained(tiny_model), SamplingConfig())
    assert asyncio.run(probe(sampler, learner, [5, 6, 7, 8, 9], tol=1e-4)) < 1e-4


def test_probe_catches_a_sampler_that_missed_the_update(tiny_model):
    from transformers import AutoTokenizer

    learner = Learner(str(tiny_model), LearnerConfig(lr=5e-2), device="cpu")
    tok = AutoTokenizer.from_pretrained(tiny_model)
    stale = HFPolicy(copy.deepcopy(learner.model), tok, SamplingConfig())
    shared = HFPolicy(learner.model, tok, SamplingConfig())
    prompt = [5, 6, 7, 8, 9]
    assert asyncio.run(probe(stale, learner, prompt, tol=1e-3)) < 1e-3
    learner.update([seq(learner, [5, 6, 7, 8, 9, 10, 11, 12], 1.0)], GRPO)
    assert asyncio.run(probe(shared, learner, prompt, tol=1e-3)) < 1e-3
    with pytest.raises(SyncError, match="not running the learner's weights"):
        asyncio.run(probe(stale, learner, prompt, tol=1e-3))


def test_memory_plan_by_hand(hf_model):
    from agentgym.trainers.memory import GiB, memory_plan

    n = sum(p.numel() for p in hf_model.parameters())
    c = hf_model.config
    plan = memory_plan(hf_model, 1000, False, 0.5, 8 * GiB)
    assert plan["weights"] == pytest.approx(n * 4 / GiB)
    assert plan["optimizer"] == pytest.approx(2 * plan["gradients"])
    per_token = c.hidden_size * c.num_hidden_layers * 34 * 4 / 2 + c.vocab_size * 8
    assert plan["activations"] == pytest.approx(1000 * per_token / GiB)
    assert plan["vllm"] == 4.0 and plan["device"] == 8.0
    assert memory_plan(hf_model, 1000, True, 0.5, 8 * GiB)["activations"] < plan["activations"]


@pytest.mark.parametrize("native", [True, False])
def test_precision_computes_in_bf16_where_it_keeps_the_steps(monkeypatch, native):
    """auto: bf16 on CUDA, and on a CPU with bf16 units for LoRA only (a full fine-tuning step
    is rounded away in a bf16 forward there); fp32 and bf16 as said; weights always float32;
    a sampler of merged weights computes in float32 on a CPU whatever the learner does."""
    import torch

    from agentgym.trainers import learner as module

    monkeypatch.setattr(module, "cpu_bf16", lambda: native)
    f32, b16 = torch.float32, torch.bfloat16
    assert module.precision(torch, "cuda", "auto", False) == (f32, b16)
    assert module.precision(torch, "cpu", "auto", False) == (f32, f32)
    assert module.precision(torch, "cpu", "auto", True) == (f32, b16 if native else f32)
    assert module.precision(torch, "cpu", "fp32", True) == (f32, f32)
    assert module.precision(torch, "cpu", "bf16", False) == (f32, b16)
    assert module.precision(torch, "cuda", "fp32", False) == (f32, f32)


def test_weights_stay_float32_so_that_small_steps_are_kept(tiny_model):
    """The learner's weights are float32 on every device, computed in bf16 where it says: bf16
    weights would round away most of an AdamW step at fine-tuning learning rates."""
    import torch

    learner = Learner(str(tiny_model), LearnerConfig(lr=1e-6), "cpu")
    learner.compute_dtype = torch.bfloat16  # what a CUDA learner computes in, here on the CPU
    layers = {n: p for n, p in learner.model.named_parameters() if "embed" not in n}
    before = {n: p.detach().clone() for n, p in layers.items()}
    learner.update([seq(learner, [5, 6, 7, 8, 9, 10, 11, 12], 1.0)], GRPO)
    assert all(p.dtype == torch.float32 for p in layers.values())
    changed = sum(int((layers[n] != before[n]).sum()) for n in layers)
    total = sum(p.numel() for p in before.values())
    assert changed / total > 0.99, changed / total  # bf16 weights: 0.4% of SmolLM2's at 1e-6


def test_gspos_sequence_ratio_trains_and_equals_the_token_ratio_on_policy(tiny_model):
    """On policy every ratio is 1 at the update, so GSPO's first step is GRPO's (same loss)."""
    ids = [[5, 6, 7, 8, 9, 10], [5, 6, 7, 30, 31]]
    seqs = [Sequence(x, [0, 0] + [1] * (len(x) - 2), [1.0] * len(x), [-1.0] * len(x)) for x in ids]
    stats = {}
    for level in ("token", "sequence"):
        learner = Learner(str(tiny_model), LearnerConfig(lr=1e-3), device="cpu")
        objective = GRPOObjective(GRPOConfig(ratio=level))
        stats[level] = learner.update(copy.deepcopy(seqs), objective)
    assert stats["sequence"]["loss"] == pytest.approx(stats["token"]["loss"], rel=1e-5)
    assert stats["sequence"]["grad_norm"] > 0


@pytest.mark.parametrize("arch", ["tiny_vision_model", "tiny_qwen25_vl"])
@pytest.mark.parametrize("solo", [True, False])
def test_learner_logprobs_equal_the_hf_samplers_on_turns_with_images(request, arch, solo):
    """Two episodes of different screenshots (different image-token counts, so the batch is
    left-padded when sampled and right-padded or alone in the learner), two turns each: the
    learner's log-probs with the same images are the sampler's; a gradient step moves the
    language model and, with freeze_vision (the default), not the vision tower. Qwen2-VL and
    Qwen2.5-VL (windowed attention in its tower)."""
    from transformers import AutoTokenizer

    from agentgym.types import Message
    from tests.conftest import png_url

    tiny_vision_model = request.getfixturevalue(arch)
    learner = Learner(str(tiny_vision_model), LearnerConfig(lr=1e-3), device="cpu")
    learner.plan.solo_work = 0 if solo else None
    tok = AutoTokenizer.from_pretrained(tiny_vision_model)
    policy = HFPolicy(learner.model, tok, SamplingConfig(max_new_tokens=12), images=learner.images)

    async def episodes() -> list:
        sizes = [((300, 200), (200, 300)), ((640, 480), (120, 90))]
        first = [
            [Message(role="user", content="look", images=[png_url("red", a)])] for a, _ in sizes
        ]
        ctxs = [policy.start(m, [], {}, i) for i, m in enumerate(first)]
        await asyncio.gather(*(policy.act(c, 12) for c in ctxs))
        for c, (_, b) in zip(ctxs, sizes, strict=True):
            policy.observe(c, [Message(role="user", content="and", images=[png_url("blue", b)])])
        await asyncio.gather(*(policy.act(c, 12) for c in ctxs))
        return ctxs

    ctxs = asyncio.run(episodes())
    got = learner.logprobs([c.token_ids for c in ctxs], images=[c.images for c in ctxs])
    for c, lp in zip(ctxs, got, strict=True):
        sampled = [i for i, m in enumerate(c.loss_mask) if m]
        assert [lp[i] for i in sampled] == pytest.approx([c.logprobs[i] for i in sampled], abs=2e-3)
    blind = learner.logprobs([ctxs[0].token_ids])[0]  # without its images: another model
    assert max(abs(blind[i] - got[0][i]) for i in range(len(blind))) > 1e-2
    visual = {k: v.clone() for k, v in learner.model.model.visual.state_dict().items()}
    lm_head = learner.model.lm_head.weight.detach().clone()
    seqs = [
        Sequence(c.token_ids, c.loss_mask, [1.0] * len(c.token_ids), c.logprobs, images=c.images)
        for c in ctxs
    ]
    learner.update(seqs, GRPO)
    assert not torch.equal(lm_head, learner.model.lm_head.weight)
    for k, v in learner.model.model.visual.state_dict().items():
        assert torch.equal(visual[k], v), k


@pytest.mark.parametrize("freeze", [True, False])
def test_lora_on_a_vision_language_model_adapts_the_tower_only_when_asked(
    tiny_vision_model, freeze
):
    cfg = LearnerConfig(lora=LoRAConfig(rank=4), freeze_vision=freeze)
    learner = Learner(str(tiny_vision_model), cfg, device="cpu")
    adapted = {n for n, p in learner.model.named_parameters() if p.requires_grad}
    assert any("language_model" in n and "lora_" in n for n in adapted)
    assert any(".visual." in n for n in adapted) is not freeze
    state, config = learner.weights.policy_weights()  # merged, untied: what a sampler loads
    assert not any("lora_" in k for k in state) and "lm_head.weight" in state
    assert config.tie_word_embeddings is False


def test_a_policy_drawn_to_image_tokens_never_samples_them(tiny_vision_model):
    """A degenerate vision-language policy that would write image placeholders (+50 on their
    logits): one sampled image token more than the images makes the model's forward fail
    for the whole batch. The sampler never samples them, the next turn and the learner run,
    and the learner's log-probs (the same ids masked) are the sampler's."""
    from transformers import AutoTokenizer

    from agentgym.types import Message
    from tests.conftest import png_url

    learner = Learner(str(tiny_vision_model), LearnerConfig(), device="cpu")
    vision = learner.images
    drawn = torch.tensor(vision.forbidden)

    def prefer(module, args, out):
        out[..., drawn] += 50.0
        return out

    learner.model.lm_head.register_forward_hook(prefer)
    tok = AutoTokenizer.from_pretrained(tiny_vision_model)
    policy = HFPolicy(learner.model, tok, SamplingConfig(max_new_tokens=16), images=vision)

    async def episode():
        ctx = policy.start([Message(role="user", content="x", images=[png_url("red")])], [], {}, 0)
        await policy.act(ctx, 16)
        policy.observe(ctx, [Message(role="user", content="y", images=[png_url("blue")])])
        await policy.act(ctx, 16)
        return ctx

    ctx = asyncio.run(episode())
    sampled = [t for t, m in zip(ctx.token_ids, ctx.loss_mask, strict=True) if m]
    assert len(sampled) == 32 and not set(sampled) & set(vision.forbidden)
    [got] = learner.logprobs([ctx.token_ids], images=[ctx.images])
    want = [lp for lp, m in zip(ctx.logprobs, ctx.loss_mask, strict=True) if m]
    assert [got[i] for i, m in enumerate(ctx.loss_mask) if m] == pytest.approx(want, abs=2e-3)


def test_an_update_counts_the_matrix_flops_it_spent(tiny_model):
    """6N a token for full fine-tuning, 4N + 2 x adapters for LoRA, 2N for a forward only;
    sequences alike share their forward, so they count once (metrics' learner GFLOP/s)."""
    from agentgym.trainers.learner import model_flops

    full = Learner(str(tiny_model), LearnerConfig(lr=1e-6), device="cpu")
    n = sum(p.numel() for p in full.model.parameters())
    a, b = [5, 6, 7, 8, 9, 10], [5, 6, 7, 30, 31, 32, 33]
    assert model_flops(full.model, [a, b]) == 6 * n * 13
    assert model_flops(full.model, [a, a, b], still=True) == 2 * n * 13
    stats = full.update([seq(full, a, 1.0), seq(full, a, -1.0), seq(full, b, 1.0)], GRPO)
    assert stats["flops"] == 6 * n * 13
    lora = Learner(str(tiny_model), LearnerConfig(lora=LoRAConfig(rank=4)), device="cpu")
    total = sum(p.numel() for p in lora.model.parameters())
    assert model_flops(lora.model, [a]) == 6 * (4 * total + 2 * lora.trainable_parameters)
