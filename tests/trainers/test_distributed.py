"""Data-parallel learning: two gloo ranks, replicas or FSDP2 shards, make the same update as
one process."""

import json
import os
import pickle
import random
import subprocess
import sys

import pytest

from agentgym.trainers import distributed
from agentgym.trainers.config import LearnerConfig
from agentgym.trainers.grpo.config import GRPOConfig
from agentgym.trainers.grpo.objective import GRPOObjective
from agentgym.trainers.learner import Learner
from agentgym.trainers.sequence import Sequence
from agentgym.trainers.sft import NLL
from tests.conftest import free_port, train_digits

CFG = LearnerConfig(lr=1e-3, micro_batch_tokens=256)


def test_each_rank_gets_a_disjoint_share_balanced_by_tokens():
    lengths = [50, 10, 40, 30, 20, 5]
    shares = [distributed.share(lengths, r, 2) for r in range(2)]
    assert sorted(shares[0] + shares[1]) == list(range(6))
    loads = [sum(lengths[i] for i in s) for s in shares]
    assert abs(loads[0] - loads[1]) <= 5
    assert distributed.share(lengths, 0, 1) == list(range(6))
    assert distributed.share([7], 1, 2) == []  # more ranks than sequences: some idle


def _batch(model):
    rng = random.Random(0)
    learner = Learner(str(model), CFG, "cpu")
    seqs = []
    for n in (40, 25, 60, 33, 18):
        ids = [rng.randrange(5, 100) for _ in range(n)]
        mask = [0] * 8 + [1] * (n - 8)
        seqs.append(Sequence(ids, mask, [rng.uniform(-1, 1) * m for m in mask], []))
    for s, lp in zip(seqs, learner.logprobs([s.token_ids for s in seqs]), strict=True):
        s.sampler_logprobs = [v * m for v, m in zip(lp, s.loss_mask, strict=True)]
    return seqs


def _recording_gradients(log):
    """Make every AdamW step first append the gradients it is about to apply to ``log``
    (whole: a shard's are gathered, on every rank at once as each steps)."""
    import torch

    real = torch.optim.AdamW.step

    def step(self, *args, **kwargs):
        params = [p for group in self.param_groups for p in group["params"]]
        log.append([_whole(p.grad) for p in params])
        return real(self, *args, **kwargs)

    return step


def _whole(t):
    return t.full_tensor() if hasattr(t, "full_tensor") else t.clone()


def _updates(learner, seqs):
    """A GRPO update, a fresh optimiser, an SFT update (what a run with a cold start does),
    then the log-probs of the batch."""
    stats = learner.update(seqs, GRPOObjective(GRPOConfig()))
    learner.restart_optimizer(learner.cfg.model_copy(update={"lr": 5e-4}), 1)
    sft = learner.update(seqs[:3], NLL())
    return stats, sft, learner.logprobs([s.token_ids for s in seqs])


def _rank(rank, model, folder, port, cfg):
    import torch

    os.environ.update(
        RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    grads = []
    torch.optim.AdamW.step = _recording_gradients(grads)
    torch.manual_seed(0)
    learner = Learner(str(model), cfg, "cpu")
    if rank == 0:
        seqs = pickle.loads((folder / "batch.pkl").read_bytes())
        (folder / "stats.json").write_text(json.dumps(_updates(learner, seqs)))
        weights = learner.weights.whole()  # under FSDP gathered from both ranks
        distributed.stop()
    else:
        distributed.follow(learner)
        weights = {} if learner.sharded else learner.model.state_dict()
    torch.save((weights, grads), folder / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("fsdp", [False, True], ids=["replicas", "fsdp"])
def test_two_gloo_ranks_update_as_one_process_does(tiny_model, tmp_path, monkeypatch, fsdp):
    import torch
    import torch.multiprocessing as mp

    seqs = _batch(tiny_model)
    (tmp_path / "batch.pkl").write_bytes(pickle.dumps(seqs))
    cfg = CFG.model_copy(update={"fsdp": fsdp})
    mp.start_processes(
        _rank, args=(tiny_model, tmp_path, free_port(), cfg), nprocs=2, start_method="spawn"
    )
    grads = []
    monkeypatch.setattr(torch.optim.AdamW, "step", _recording_gradients(grads))
    torch.manual_seed(0)
    one = Learner(str(tiny_model), CFG, "cpu")
    *want, want_logprobs = _updates(one, seqs)
    *got, got_logprobs = json.loads((tmp_path / "stats.json").read_text())
    for a, b in zip(want, got, strict=True):
        for key in ("loss", "grad_norm", "trained_tokens"):
            assert b[key] == pytest.approx(a[key], rel=1e-5), key
    for a, b in zip(want_logprobs, got_logprobs, strict=True):  # each rank did its share
        assert b == pytest.approx(a, abs=1e-4)
    (r0, g0), (r1, g1) = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    assert (len(g0), len(g1), len(grads)) == (2, 2, 2)
    # the summed gradients are one process's, up to float32 sums in another order (2e-7
    # measured with replicas, 5e-6 with FSDP's reduce-scatter; the second update's, 1e-5,
    # starts from weights that AdamW's first step moved apart where it divided float noise by
    # a near-zero second moment)
    for mine, theirs, other, tol in zip(grads, g0, g1, (1e-5, 1e-4), strict=True):
        assert len(mine) == len(theirs) == len(other)
        for i, g in enumerate(mine):
            assert torch.equal(theirs[i], other[i]), i
            error = float((theirs[i] - g).norm() / g.norm().clamp(min=1e-12))
            assert error < tol, (i, error)
        assert max(float(g.abs().max()) for g in mine) > 1e-3  # not all zero
    mine = one.model.state_dict()
    assert set(r0) == set(mine)
    for name in r0:
        # within 7e-4 measured (AdamW divides float noise by near-zero second moments); one
        # optimiser step of lr 1e-3 moves a weight matrix by about 5e-2 of its norm
        error = float((r0[name] - mine[name]).norm() / mine[name].norm())
        assert error < 5e-3, (name, error)
        if not fsdp:
            assert torch.equal(r0[name], r1[name]), name  # so the replicas stay identical
    assert r1 == {} if fsdp else len(r1) == len(r0)  # a shard's rank holds no whole weights


SMALL = ["trainer.steps=2", "trainer.tasks_per_step=2", "trainer.group_size=4",
         "policy.max_new_tokens=8", "learner.lr=1e-3"]  # fmt: skip


def torchrun(model, out, *overrides: str) -> list[dict]:
    """``agentgym train env=digits`` with two ``torchrun`` ranks; its metrics."""
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_port", str(free_port()), "-m", "agentgym.cli", "train", "env=digits",
        f"policy.model={model}", "device=cpu", f"out={out}", *SMALL, *overrides,
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_torchrun_two_fsdp_ranks_train_as_one_process_and_resume(tiny_model, tmp_path):
    assert train_digits(tiny_model, tmp_path / "one", *SMALL) == 0
    two = torchrun(tiny_model, tmp_path / "two", "policy=hf", "learner.fsdp=true")
    one = [json.loads(x) for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    assert len(two) == 2 and two[0]["reward_mean"] == one[0]["reward_mean"]
    assert two[0]["grad_norm"] == pytest.approx(one[0]["grad_norm"], rel=1e-4)
    assert two[0]["loss"] == pytest.approx(one[0]["loss"], rel=1e-4, abs=1e-7)
    # rank 0 samples with a replica of the shards, which the sync refreshes and the probe checks
    assert all(r["sync_probe_gap"] < 1e-4 for r in two), [r["sync_probe_gap"] for r in two]
    assert one[0]["sync_probe_gap"] is None  # one process samples with the learner's model
    # the gathered checkpoint resumes on the shards
    again = torchrun(
        tiny_model, tmp_path / "two", "policy=hf", "learner.fsdp=true", "trainer.steps=3",
        "trainer.resume=true",
    )  # fmt: skip
    assert [r["step"] for r in again] == [0, 1, 2] and again[:2] == two
    assert (tmp_path / "two" / "model" / "model.safetensors").exists()


@pytest.mark.vllm
@pytest.mark.slow
def test_torchrun_fsdp_ranks_broadcast_their_gathered_weights_into_vllm(tiny_model, tmp_path):
    got = torchrun(
        tiny_model, tmp_path, "policy=vllm", "learner.fsdp=true", "trainer.sync_probe_tol=1e-3",
        "policy.engine={max_model_len: 2048, gpu_memory_utilization: 0.2, enforce_eager: true, "
        "max_num_batched_tokens: 16384}",
    )  # fmt: skip
    assert [m["learner_ranks"] for m in got] == [2, 2]
    assert all(m["sync_probe_gap"] < 1e-3 for m in got)  # the engine in rank 0 has the shards
