"""The learner over two gloo ranks, replicas and FSDP2 shards, against one process.

The same real model and the same synthetic GRPO batch (``bench/learner.py``'s) in each layout,
the layouts alternating between rounds, each round in fresh processes: one process, two ranks
holding replicas (``torchrun``'s data parallel), two ranks holding shards (``learner.fsdp``).
Prints per layout the seconds of an update (min / median / max over rounds; the first update
of a process is left out) and the bytes of weights, gradients and AdamW state each rank holds,
and the ratios to one process. On this 2-core machine the ranks share the cores one process
uses alone, so the time is about what they cost, not what they gain; the bytes are the point.

    bash scripts/setup.sh --models     # once: .cache/models/smollm2-135m-instruct
    .venv/bin/python bench/learner_ranks.py [--rounds 3] [--seqs 8] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from learner import batch

LAYOUTS = {"one process": (1, False), "2 replicas": (2, False), "2 FSDP shards": (2, True)}


def _held(learner) -> int:
    """Bytes of weights, gradients and optimiser state this rank holds (a shard's local part)."""

    def local(t) -> int:
        t = t.to_local() if hasattr(t, "to_local") else t
        return t.numel() * t.element_size()

    params = list(learner.model.parameters())
    state = [v for s in learner.optimiser.adamw.state.values() for v in s.values() if v.dim() > 0]
    return sum(local(p) for p in params) * 2 + sum(local(v) for v in state)  # + grads (as p)


def _rank(rank: int, world: int, fsdp: bool, args: argparse.Namespace, port: int, out: str):
    import torch

    from agentgym.trainers import distributed
    from agentgym.trainers.config import LearnerConfig
    from agentgym.trainers.grpo.config import GRPOConfig
    from agentgym.trainers.grpo.objective import GRPOObjective
    from agentgym.trainers.learner import Learner

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), LOCAL_RANK=str(rank))  # fmt: skip
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    cfg = LearnerConfig(lr=1e-6, micro_batch_tokens=4096, fsdp=fsdp)
    learner = Learner(args.model, cfg, "cpu")
    if rank > 0:
        distributed.follow(learner)
        return
    vocab = int(learner.model.config.vocab_size)
    seqs = batch(args.seqs, args.min_len, args.max_len, vocab)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        learner.update(seqs, GRPOObjective(GRPOConfig()))
        times.append(time.perf_counter() - t)
    held = _held(learner)
    distributed.stop()
    Path(out).write_text(json.dumps({"seconds": times[1:], "held": held}))


def run(layout: str, args: argparse.Namespace) -> dict:
    import torch.multiprocessing as mp

    world, fsdp = LAYOUTS[layout]
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "result.json")
        port = 29000 + os.getpid() % 1000
        mp.start_processes(_rank, args=(world, fsdp, args, port, out), nprocs=world,
                           start_method="spawn")  # fmt: skip
        return json.loads(Path(out).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=".cache/models/smollm2-135m-instruct")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seqs", type=int, default=8)
    parser.add_argument("--min-len", type=int, default=200)
    parser.add_argument("--max-len", type=int, default=400)
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {k: [] for k in LAYOUTS}
    held: dict[str, int] = {}
    for r in range(args.rounds):
        order = list(LAYOUTS) if r % 2 == 0 else list(reversed(LAYOUTS))
        for layout in order:
            got = run(layout, args)
            seconds[layout] += got["seconds"]
            held[layout] = got["held"]
            print(f"round {r}: {layout}: {statistics.median(got['seconds']):.2f} s", flush=True)
    base_s, base_b = statistics.median(seconds["one process"]), held["one process"]
    print("\n| layout | s / update (min / median / max) | ratio | held per rank | ratio |")
    print("|---|---|---|---|---|")
    for layout, s in seconds.items():
        med = statistics.median(s)
        print(
            f"| {layout} | {min(s):.2f} / {med:.2f} / {max(s):.2f} | {med / base_s:.2f} "
            f"| {held[layout] / 2**20:.0f} MiB | {held[layout] / base_b:.2f} |"
        )


if __name__ == "__main__":
    main()
