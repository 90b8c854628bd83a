"""The learner's GRPO update, one sequence per forward (what a CPU learner does now) against
padded micro-batches (what it did before, and what a GPU learner still does), in one process;
with ``--tied F``, a batch whose first F of groups are tied (no advantage), with their
sequences' backward skipped (``Objective.still``, what the learner does now) against every
sequence taking its backward (before); with ``--precision``, full fine-tuning and LoRA (rank
32), each in fp32 and in bf16 (four learners, the same batch; ratios against fp32 full
fine-tuning).

The same real model and the same synthetic GRPO batch for both: ``--seqs`` sequences of a
multi-turn shape (a prompt, then turns whose tokens the loss covers, between observation
tokens it does not), lengths drawn from ``--min-len``..``--max-len``. Rounds alternate the two
layouts; prints seconds and CPU seconds per update and trained tokens/s (min / median / max),
and the ratio of medians (one by one / padded; < 1 is faster).

    bash scripts/setup.sh --models     # once: .cache/models/smollm2-135m-instruct
    .venv/bin/python bench/learner.py [--rounds 5] [--model DIR] [--lora 32 --dtype bf16]
        [--tied 0.5 | --precision]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from agentgym.trainers.config import LearnerConfig, LoRAConfig
from agentgym.trainers.grpo.config import GRPOConfig
from agentgym.trainers.grpo.objective import GRPOObjective
from agentgym.trainers.learner import Learner
from agentgym.trainers.sequence import Sequence


class EveryBackward(GRPOObjective):
    """GRPO as it was before ``still``: every sequence takes its backward."""

    def still(self, seq: Sequence) -> bool:
        return False


def batch(n: int, lo: int, hi: int, vocab: int, seed: int = 0, tied: float = 0.0) -> list[Sequence]:
    """``n`` sequences: a 150-token prompt, then 4 turns of sampled tokens between
    observations, with advantages of a group (+1 / -1; 0 in the first ``tied`` of the batch)
    and sampler log-probs."""
    rng = random.Random(seed)
    seqs = []
    for i in range(n):
        length = rng.randint(lo, hi)
        prompt = min(150, length // 2)
        mask = [0] * prompt + [int((t // 40) % 2 == 1 or t < 8) for t in range(length - prompt)]
        ids = [rng.randrange(vocab) for _ in range(length)]
        adv = 0.0 if i < tied * n else 1.0 if i % 2 else -1.0
        seqs.append(
            Sequence(
                token_ids=ids,
                loss_mask=mask,
                advantages=[adv * m for m in mask],
                sampler_logprobs=[-2.0 * m for m in mask],
            )
        )
    return seqs


def timed(
    learner: Learner, seqs: list[Sequence], work: int | None, objective: type = GRPOObjective
) -> tuple[float, float, float]:
    """(seconds, CPU seconds, trained tokens) of one update with ``solo_work=work``."""
    learner.plan.solo_work = work
    t, c = time.perf_counter(), time.process_time()
    stats = learner.update(seqs, objective(GRPOConfig()))
    return time.perf_counter() - t, time.process_time() - c, stats["trained_tokens"]


def precision_sides(args: argparse.Namespace) -> None:
    """Full fine-tuning and LoRA, each in fp32 and bf16, on the same batch, interleaved."""
    sides = {
        f"{kind} {dtype}": LearnerConfig(
            lr=1e-7,
            precision=dtype,
            micro_batch_tokens=args.micro_batch_tokens,
            lora=LoRAConfig(rank=32 if kind == "LoRA" else 0, alpha=32),
        )
        for kind in ("full", "LoRA")
        for dtype in ("fp32", "bf16")
    }
    learners = {name: Learner(args.model, cfg, "cpu") for name, cfg in sides.items()}
    vocab = next(iter(learners.values())).model.config.vocab_size
    seqs = batch(args.seqs, args.min_len, args.max_len, vocab)
    for learner in learners.values():
        timed(learner, seqs[:2], 0)  # warm-up
    runs: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(args.rounds):
        order = list(learners.items())
        for name, learner in order if r % 2 == 0 else order[::-1]:
            runs[name].append(timed(learner, seqs, 0)[0])
            print(f"round {r}: {name} {runs[name][-1]:.2f} s", flush=True)
    base = statistics.median(runs["full fp32"])
    print("| learner | s / update (min / med / max) | ratio to full fp32 |\n|---|---|---|")
    for name, xs in runs.items():
        print(f"| {name} | {spread(xs)} | {statistics.median(xs) / base:.2f} |")


def spread(xs: list[float]) -> str:
    return f"{min(xs):.2f} / {statistics.median(xs):.2f} / {max(xs):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=".cache/models/smollm2-135m-instruct")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seqs", type=int, default=16)
    parser.add_argument("--min-len", type=int, default=300)
    parser.add_argument("--max-len", type=int, default=700)
    parser.add_argument("--micro-batch-tokens", type=int, default=4096)
    parser.add_argument("--tied", type=float, default=None, help="share of tied sequences")
    parser.add_argument("--lora", type=int, default=0, help="LoRA rank of the layouts' learner")
    parser.add_argument("--dtype", default="fp32", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--precision", action="store_true", help="fp32 / bf16, full / LoRA")
    args = parser.parse_args()
    if args.precision:
        precision_sides(args)
        return
    lora = LoRAConfig(rank=args.lora, alpha=32)
    cfg = LearnerConfig(
        lr=1e-7, micro_batch_tokens=args.micro_batch_tokens, precision=args.dtype, lora=lora
    )
    learner = Learner(args.model, cfg, "cpu")
    vocab = learner.model.config.vocab_size
    seqs = batch(args.seqs, args.min_len, args.max_len, vocab, tied=args.tied or 0.0)
    timed(learner, seqs[:2], 0)  # warm-up
    sides = {"one by one": (0, GRPOObjective), "padded": (None, GRPOObjective)}
    if args.tied is not None:  # both one by one: the CPU's layout
        sides = {"still: forward only": (0, GRPOObjective), "every backward": (0, EveryBackward)}
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in sides}
    for r in range(args.rounds):  # "one by one": every sequence alone (solo_work 0)
        order = list(sides.items())
        for name, (work, objective) in order if r % 2 == 0 else order[::-1]:
            runs[name].append(timed(learner, seqs, work, objective))
    print(f"{args.seqs} sequences of {args.min_len}-{args.max_len} tokens, {args.rounds} rounds"
          + (f", {args.tied:.0%} tied" if args.tied is not None else ""))  # fmt: skip
    print("| layout | s / update (min / med / max) | CPU s / update | trained tokens/s (med) |")
    print("|---|---|---|---|")
    for name, xs in runs.items():
        wall, cpu = [x[0] for x in xs], [x[1] for x in xs]
        tps = statistics.median(x[2] / x[0] for x in xs)
        print(f"| {name} | {spread(wall)} | {spread(cpu)} | {tps:.0f} |")
    ours, theirs = (statistics.median(x[0] for x in xs) for xs in runs.values())
    print(f"ratio ({' / '.join(runs)}, median seconds): {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
