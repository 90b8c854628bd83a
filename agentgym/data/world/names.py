"""Invented names, unique by construction.

Each kind of entity has a name space of ``M`` names (products of syllable lists). The k-th
entity of a kind gets name number ``(k * A + B) mod M`` with ``A`` coprime to ``M``: a bijection,
so names never repeat, and scattered, so neighbouring ids do not look alike.
"""

from __future__ import annotations

import math

import numpy as np

ONSETS = [
    "b",
    "br",
    "c",
    "d",
    "dr",
    "f",
    "g",
    "gl",
    "h",
    "k",
    "l",
    "m",
    "n",
    "p",
    "qu",
    "r",
    "s",
    "st",
    "t",
    "th",
    "v",
    "w",
    "z",
    "sh",
]
VOWELS = ["a", "e", "i", "o", "u", "ae", "ei", "ou", "y"]
CODAS = ["", "n", "r", "l", "s", "th", "m", "x", "nd", "rk"]


def syllables(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` distinct syllables, drawn with ``rng``."""
    pool = sorted({o + v + c for o in ONSETS for v in VOWELS for c in CODAS})
    picked = rng.choice(len(pool), size=count, replace=False)
    return [pool[i] for i in picked]


class NameSpace:
    """Maps an index to a unique word made of ``parts`` syllables from ``syl``."""

    def __init__(self, syl: list[str], parts: int, salt: int) -> None:
        self.syl, self.parts = syl, parts
        self.size = len(syl) ** parts
        a = 1_000_003 + 2 * salt
        while math.gcd(a, self.size) != 1:
            a += 1
        self.a, self.b = a, 7919 * (salt + 1) + 104_729

    def syllables(self, k: int) -> list[str]:
        """The syllables of name number ``k`` (distinct ``k`` give distinct lists)."""
        if k >= self.size:
            raise ValueError(f"name space of {self.size} exhausted at {k}")
        n = (k * self.a + self.b) % self.size
        out = []
        for _ in range(self.parts):
            n, r = divmod(n, len(self.syl))
            out.append(self.syl[r])
        return out

    def words(self, k: int, *lengths: int) -> list[str]:
        """Name ``k`` cut into capitalised words of the given syllable counts."""
        syl, out = self.syllables(k), []
        for n in lengths:
            out.append("".join(syl[:n]).capitalize())
            syl = syl[n:]
        return out
