"""How a learner cuts sequences into forwards: micro-batches packed by their padded size, on a
CPU a long sequence alone, and under FSDP an idle forward for each one the busiest rank runs
more. The learner's update and log-prob loops walk the plan the same way on every device."""

from __future__ import annotations

from dataclasses import dataclass

from agentgym.trainers import distributed

SOLO_WORK = 16_384
"""Tokens x hidden size from which a CPU forward of one sequence beats a padded micro-batch:
SmolLM2 (hidden 576) at 60 tokens is above it, the tiny test model (128) at 60 below."""

Rows = list[tuple[list[int], list[str]]]
"""Token ids and the images they show, one pair a sequence."""
Plan = list[tuple[list[int] | None, bool]]
"""(the rows of a forward, None for an idle one; whether it takes no backward)."""


def pack(lengths: list[int], budget: int) -> list[list[int]]:
    """Group indices into micro-batches whose padded size (n x longest) fits ``budget``.

    Longest first, so that each micro-batch holds sequences of similar length.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= budget:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


@dataclass
class MicroBatches:
    """A learner's micro-batch planner.

    Attributes:
        hidden: The model's hidden size (a sequence's work is its tokens times it).
        solo_work: Work from which a sequence goes alone (a CPU's setting; None: none does).
            On a CPU a sequence alone has no padding and no attention mask, so SDPA takes its
            causal kernel (SmolLM2-135M, forward and backward of 16 sequences: 250-650 tokens,
            35 s alone, 42 s in padded micro-batches, 51 s packed into rows with position ids,
            whose block mask SDPA computes in full; 60-160 tokens, 0.69x the padded time);
            short sequences of a small model (the tiny test model's 30-60 tokens at hidden 128:
            1.5x slower alone) stay batched; a GPU wants the batches.
        sharded: Under FSDP every rank runs as many forwards as the busiest.
    """

    hidden: int
    solo_work: int | None
    sharded: bool

    def batches(self, rows: Rows, budget: int) -> list[list[int]]:
        """Micro-batches of ``rows`` padded to at most ``budget`` tokens (``pack``); a sequence
        of ``solo_work`` or more goes alone instead, with the sequences identical to it (a
        group's episodes that played alike: one forward serves them all)."""
        alone: dict[tuple[tuple[int, ...], tuple[str, ...]], list[int]] = {}
        rest: list[int] = []
        for i, (ids, images) in enumerate(rows):
            if self.solo_work is not None and len(ids) * self.hidden >= self.solo_work:
                alone.setdefault((tuple(ids), tuple(images)), []).append(i)
            else:
                rest.append(i)
        grouped = pack([len(rows[i][0]) for i in rest], budget)
        return [*alone.values(), *[[rest[j] for j in b] for b in grouped]]

    def rounds(self, micros: list[list[int]]) -> list[list[int] | None]:
        """``micros``, and under FSDP a None for each forward this rank runs idle (each forward
        gathers the layers with the other ranks)."""
        if not self.sharded:
            return list(micros)
        return [*micros, *[None] * (distributed.most(len(micros)) - len(micros))]

    def for_update(self, rows: Rows, still: list[bool], budget: int) -> Plan:
        """An update's forwards, each with whether its loss is 0 whatever the weights (``still``
        per row: a forward without a backward, for the statistics). Under FSDP every forward
        takes its backward (the ranks' collectives must pair up)."""
        if self.sharded:
            return [(micro, False) for micro in self.rounds(self.batches(rows, budget))]
        plan: Plan = []
        for flag in (False, True):
            which = [i for i, s in enumerate(still) if s == flag]
            micros = self.batches([rows[i] for i in which], budget)
            plan += [([which[j] for j in micro], flag) for micro in micros]
        return plan
