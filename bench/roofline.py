"""The learner against this CPU's roofline: its achieved FLOP/s on a GRPO update of the main
command's shapes, over the fp32 matrix-multiply peak measured in the same run, and where the
update's time goes.

Peak: a loop of 2048^3 fp32 matmuls (torch, all threads) measured before each round. The
learner: one update of ``--seqs`` synthetic multi-turn sequences (``bench/learner.py``'s batch)
on the real model; FLOPs counted as 6 x parameters x tokens (forward and backward of every
token, as the issue that asked for this counts them). Rounds alternate; prints each round,
then the ratio achieved / peak (min / median / max; goal >= 0.75) and a profile of one update
by kind of work (self CPU time of torch's ops: matrix products, attention, vocabulary
projection's log-softmax and gather, optimiser, the rest).

    bash scripts/setup.sh --models     # once: .cache/models/smollm2-135m-instruct
    .venv/bin/python bench/roofline.py [--rounds 3] [--seqs 16]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import torch
from learner import batch, timed  # bench/learner.py, beside this script

from agentgym.trainers.config import LearnerConfig
from agentgym.trainers.grpo.config import GRPOConfig
from agentgym.trainers.grpo.objective import GRPOObjective
from agentgym.trainers.learner import Learner

KINDS = {
    "matrix products": ("mm", "addmm", "bmm", "matmul", "linear", "baddbmm"),
    "log-softmax and gather": ("log_softmax", "gather", "logsumexp", "nll", "cross_entropy"),
    "attention": ("scaled_dot_product", "flash", "softmax"),  # after log_softmax: first match
    "optimiser": ("_foreach", "adam", "lerp", "addcdiv", "addcmul"),
}


def peak(seconds: float = 2.0, n: int = 2048) -> float:
    """fp32 matmul GFLOP/s of this CPU now."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.mm(a, b)
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - t0) / 1e9


def kind(op: str) -> str:
    name = op.removeprefix("aten::")
    return next((k for k, keys in KINDS.items() if any(key in name for key in keys)), "the rest")


def profile(learner: Learner, seqs: list) -> tuple[dict[str, float], dict[str, float]]:
    """Shares of one update's self CPU time: by kind of work, and the rest's largest ops."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        learner.update(seqs, GRPOObjective(GRPOConfig()))
    shares: dict[str, float] = defaultdict(float)
    rest: dict[str, float] = {}
    for event in prof.key_averages():
        which = kind(event.key)
        shares[which] += event.self_cpu_time_total
        if which == "the rest":
            rest[event.key] = event.self_cpu_time_total
    total = sum(shares.values()) or 1.0
    largest = sorted(rest.items(), key=lambda kv: -kv[1])[:8]
    by_kind = sorted(shares.items(), key=lambda kv: -kv[1])
    return {k: v / total for k, v in by_kind}, {k: v / total for k, v in largest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=".cache/models/smollm2-135m-instruct")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seqs", type=int, default=16)
    parser.add_argument("--min-len", type=int, default=300)
    parser.add_argument("--max-len", type=int, default=700)
    args = parser.parse_args()
    learner = Learner(args.model, LearnerConfig(lr=1e-7), "cpu")
    params = sum(p.numel() for p in learner.model.parameters())
    seqs = batch(args.seqs, args.min_len, args.max_len, learner.model.config.vocab_size)
    tokens = sum(len(s.token_ids) for s in seqs)
    timed(learner, seqs[:2], None)  # warm-up
    ratios = []
    for r in range(args.rounds):
        top = peak()
        seconds = timed(learner, seqs, None)[0]
        achieved = 6 * params * tokens / seconds / 1e9
        ratios.append(achieved / top)
        line = f"round {r}: peak {top:.0f} GFLOP/s, learner {achieved:.0f} GFLOP/s"
        print(f"{line} ({seconds:.2f} s, {tokens} tokens), ratio {ratios[-1]:.2f}", flush=True)
    print(f"achieved / peak: {min(ratios):.2f} / {statistics.median(ratios):.2f} / "
          f"{max(ratios):.2f} (min / median / max; goal >= 0.75)")  # fmt: skip
    print("one update, self CPU time by kind:")
    by_kind, rest = profile(learner, seqs)
    for name, share in by_kind.items():
        print(f"  {name:24s} {100 * share:5.1f}%")
    print("the rest's largest ops:")
    for name, share in rest.items():
        print(f"  {name:40s} {100 * share:5.1f}%")


if __name__ == "__main__":
    main()
