"""The learner against this CPU's roofline: its achieved FLOP/s on a GRPO update of the main
command's shapes, over the fp32 and the bf16 matrix-multiply peaks measured in the same run,
and where the update's time goes.

Peaks: a loop of 2048^3 matmuls (torch, all threads) in each dtype, measured before each
round. The learner (``--lora``, ``--precision``: the README recipe's LoRA rank 32 under
``auto`` unless told): one update of ``--seqs`` synthetic multi-turn sequences
(``bench/learner.py``'s batch) on the real model; FLOPs as the update counts them
(``model_flops``: 6 x parameters x tokens for full fine-tuning, about 4 for LoRA). Prints each
round, then the ratio achieved / peak for both peaks (min / median / max) and a profile of one
update by kind of work (self CPU time of torch's ops: matrix products, attention, vocabulary
projection's log-softmax and gather, optimiser, the rest).

    bash scripts/setup.sh --models     # once: .cache/models/smollm2-135m-instruct
    .venv/bin/python bench/roofline.py [--rounds 3] [--seqs 16] [--lora 0 --precision fp32]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import torch
from learner import batch, timed  # bench/learner.py, beside this script

from agentgym.trainers.config import LearnerConfig, LoRAConfig
from agentgym.trainers.grpo.config import GRPOConfig
from agentgym.trainers.grpo.objective import GRPOObjective
from agentgym.trainers.learner import Learner, model_flops

KINDS = {
    "matrix products": ("mm", "addmm", "bmm", "matmul", "linear", "baddbmm"),
    "log-softmax and gather": ("log_softmax", "gather", "logsumexp", "nll", "cross_entropy"),
    "attention": ("scaled_dot_product", "flash", "softmax"),  # after log_softmax: first match
    "optimiser": ("_foreach", "adam", "lerp", "addcdiv", "addcmul"),
}


def peak(dtype: torch.dtype, seconds: float = 2.0, n: int = 2048) -> float:
    """Matmul GFLOP/s of this CPU now in ``dtype``."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
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
    parser.add_argument("--lora", type=int, default=32, help="LoRA rank (0: full)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    args = parser.parse_args()
    lora = LoRAConfig(rank=args.lora, alpha=32)
    learner = Learner(args.model, LearnerConfig(lr=1e-7, precision=args.precision, lora=lora))
    seqs = batch(args.seqs, args.min_len, args.max_len, learner.model.config.vocab_size)
    tokens = sum(len(s.token_ids) for s in seqs)
    flops = model_flops(learner.model, [s.token_ids for s in seqs])
    timed(learner, seqs[:2], None)  # warm-up
    print(f"LoRA rank {args.lora}, computing in {learner.compute_dtype}, {tokens} tokens")
    ratios: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for r in range(args.rounds):
        tops = {"fp32": peak(torch.float32), "bf16": peak(torch.bfloat16)}
        seconds = timed(learner, seqs, None)[0]
        achieved = flops / seconds / 1e9
        for name, top in tops.items():
            ratios[name].append(achieved / top)
        print(
            f"round {r}: peaks {tops['fp32']:.0f} (fp32) {tops['bf16']:.0f} (bf16) GFLOP/s, "
            f"learner {achieved:.0f} GFLOP/s ({seconds:.2f} s)",
            flush=True,
        )
    for name, xs in ratios.items():
        print(
            f"achieved / {name} peak: {min(xs):.2f} / {statistics.median(xs):.2f} / "
            f"{max(xs):.2f} (min / median / max)"
        )
    print("one update, self CPU time by kind:")
    by_kind, rest = profile(learner, seqs)
    for name, share in by_kind.items():
        print(f"  {name:24s} {100 * share:5.1f}%")
    print("the rest's largest ops:")
    for name, share in rest.items():
        print(f"  {name:40s} {100 * share:5.1f}%")


if __name__ == "__main__":
    main()
