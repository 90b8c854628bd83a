"""The cold start (SFT) under each learner setting: how far a held-out share of the cold start's
own episodes falls in NLL, and the seconds it took, per precision, LoRA rank and learning rate.

The episodes are a run's ``cold_start/trajectories.jsonl`` (any ``agentgym train`` with a cold
start writes them): the first ``--train`` are fine-tuned on (one epoch, batches of 4, the
recipe's cosine schedule), the rest held out. Held-out NLL is computed in float32 from the
same weights after training, as a CPU sampler computes. Sides run one after another in this
process; each line: ``precision:lora_rank:lr``.

    .venv/bin/python bench/cold_start.py RUN/cold_start/trajectories.jsonl \\
        fp32:0:5e-5 bf16:32:5e-4 fp32:32:5e-4 bf16:32:2e-3
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from agentgym.trainers.config import LearnerConfig, LoRAConfig
from agentgym.trainers.grpo.config import SFTSettings
from agentgym.trainers.learner import Learner
from agentgym.trainers.sequence import Sequence
from agentgym.trainers.sft import fine_tune, load_sequences


def nll(learner: Learner, held: list[Sequence]) -> float:
    """Mean NLL per trained token of ``held``."""
    rows = learner.logprobs([s.token_ids for s in held])
    return statistics.fmean(
        -lp
        for s, row in zip(held, rows, strict=True)
        for lp, m in zip(row, s.loss_mask, strict=True)
        if m
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a cold start's trajectories.jsonl")
    parser.add_argument("sides", nargs="+", help="precision:lora_rank:lr")
    parser.add_argument("--model", default=".cache/models/smollm2-135m-instruct")
    parser.add_argument("--train", type=int, default=24, help="episodes trained on")
    args = parser.parse_args()
    seqs = load_sequences([args.data])
    train, held = seqs[: args.train], seqs[args.train :]
    print(f"{len(train)} episodes trained on, {len(held)} held out")
    print("| precision | LoRA rank | lr | held-out NLL before -> after | seconds |")
    print("|---|---|---|---|---|")
    for side in args.sides:
        precision, rank, lr = side.split(":")
        lora = LoRAConfig(rank=int(rank), alpha=32)
        cfg = LearnerConfig(precision=precision, micro_batch_tokens=2048, lora=lora)
        learner = Learner(args.model, cfg, "cpu")
        before, t = nll(learner, held), time.perf_counter()
        fine_tune(learner, train, SFTSettings(lr=float(lr), epochs=1, batch_size=4))
        seconds = time.perf_counter() - t
        learner.compute_dtype = torch.float32  # as the CPU sampler computes
        after = nll(learner, held)
        print(f"| {precision} | {rank} | {lr} | {before:.3f} -> {after:.3f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
