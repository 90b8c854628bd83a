"""LoongRL's KeyChain: hide a question behind a chain of UUIDs in a long context.

From a question, its supporting documents and a pool of distractor documents, ``synthesize``
builds a context of a target length in tokens (counted with the policy's tokenizer): the
documents, the links of the true chain ``start -> k1 -> ... -> question`` and of several decoy
chains (disjoint keys, each ending at another question), shuffled in at random positions, the
supporting documents at a chosen depth. The instruction names the start key.

Token counts of the pool are computed once per pool and summed (documents are joined by a
blank line, which every BPE tokenizer keeps as its own tokens), so a 128K-token context costs
one pass over the chosen documents, not a tokenisation of the whole context per attempt.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

SEP = "\n\n"
Count = Callable[[str], int]


@dataclass(frozen=True)
class KeyChain:
    """One synthesised task."""

    context: str
    instruction: str
    start: str
    chain: list[str]
    """The true chain's keys, start first."""
    question: str
    decoy_starts: list[str]
    decoy_questions: list[str]
    tokens: int
    """Tokens of the context, as estimated from the per-document counts."""
    evidence_depth: float
    links: dict[str, str] = field(default_factory=dict)
    """Every key's value (a key or a question), true and decoy chains alike."""


def link(key: str, value: str) -> str:
    return f'The value of key {key} is "{value}".'


def resolve(links: dict[str, str], start: str, limit: int = 64) -> list[str]:
    """Follow ``start`` through ``links``; returns the path (keys, then the final value)."""
    path = [start]
    while path[-1] in links and len(path) <= limit:
        path.append(links[path[-1]])
    return path


def _keys(rng: np.random.Generator, n: int) -> list[str]:
    return [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(n)]


def _chain(keys: list[str], question: str) -> tuple[dict[str, str], list[str]]:
    links = dict(itertools.pairwise(keys)) | {keys[-1]: question}
    return links, [link(k, v) for k, v in links.items()]


class Pool:
    """Distractor documents and their token counts (computed once)."""

    def __init__(self, docs: Sequence[str], count: Count) -> None:
        self.docs = list(docs)
        self.count = count
        self.tokens = np.array([count(d) for d in self.docs])
        self.sep = max(0, count("a" + SEP + "a") - 2 * count("a"))


def synthesize(
    question: str,
    supporting: Sequence[str],
    pool: Pool,
    decoy_questions: Sequence[str],
    target_tokens: int,
    rng: np.random.Generator,
    chain_length: int = 3,
    evidence_depth: float | None = None,
) -> KeyChain:
    """Build one KeyChain context of about ``target_tokens`` tokens (see the module doc)."""
    keys = _keys(rng, chain_length * (1 + len(decoy_questions)))
    links, pieces = _chain(keys[:chain_length], question)
    starts = []
    for i, dq in enumerate(decoy_questions, 1):
        dk = keys[i * chain_length : (i + 1) * chain_length]
        dl, dp = _chain(dk, dq)
        links |= dl
        pieces += dp
        starts.append(dk[0])
    fixed = list(supporting) + pieces
    used = sum(pool.count(p) + pool.sep for p in fixed)
    order = rng.permutation(len(pool.docs))
    fill, budget = [], target_tokens - used
    for i in order:
        cost = int(pool.tokens[i]) + pool.sep
        if cost > budget:
            continue
        fill.append(pool.docs[i])
        budget -= cost
        if budget < 8:
            break
    depth = float(rng.random()) if evidence_depth is None else evidence_depth
    body = list(fill)
    at = round(depth * len(body))
    body[at:at] = list(supporting)
    for p in pieces:  # chain links anywhere
        body.insert(int(rng.integers(0, len(body) + 1)), p)
    instruction = (
        f"The context hides a question behind a chain of keys. Start from key {keys[0]}, follow "
        "each key to its value until you reach a question, then answer that question using the "
        "documents. Give the answer as <answer>...</answer>."
    )
    return KeyChain(
        context=SEP.join(body),
        instruction=instruction,
        start=keys[0],
        chain=keys[:chain_length],
        question=question,
        decoy_starts=starts,
        decoy_questions=list(decoy_questions),
        tokens=target_tokens - budget,
        evidence_depth=depth,
        links=links,
    )
