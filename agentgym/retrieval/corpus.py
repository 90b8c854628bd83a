"""A corpus on disk: one JSON line per passage and a memory-mapped table of byte offsets, so
that an index of millions of passages opens in milliseconds and reads only the hits."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Passage:
    """One retrievable unit: a document or a chunk of one."""

    id: str
    title: str
    text: str

    @property
    def contents(self) -> str:
        """Title and text as Search-R1's retrieval server returns them."""
        return f"{self.title}\n{self.text}"


@dataclass(frozen=True)
class Hit:
    """A passage returned for a query, with its score (higher is better)."""

    id: str
    title: str
    text: str
    score: float


class Corpus:
    """The passages of an index folder (``corpus.jsonl`` + ``offsets.npy``)."""

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        self._offsets = np.load(folder / "offsets.npy", mmap_mode="r")
        self._fd = os.open(folder / "corpus.jsonl", os.O_RDONLY)  # pread: safe across threads

    @staticmethod
    def write(folder: str | Path, passages: Iterable[Passage]) -> int:
        """Write ``passages`` into ``folder``; returns how many."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        offsets = [0]
        with open(folder / "corpus.jsonl", "wb") as f:
            for p in passages:
                line = json.dumps({"id": p.id, "title": p.title, "text": p.text}) + "\n"
                offsets.append(offsets[-1] + f.write(line.encode()))
        np.save(folder / "offsets.npy", np.asarray(offsets, dtype=np.int64))
        return len(offsets) - 1

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, row: int) -> Passage:
        start, end = int(self._offsets[row]), int(self._offsets[row + 1])
        record = json.loads(os.pread(self._fd, end - start, start))
        return Passage(record["id"], record["title"], record["text"])

    def hits(self, rows: Iterable[int], scores: Iterable[float]) -> list[Hit]:
        """Hits for ``rows`` (negative rows, faiss's "no result", are dropped)."""
        out = []
        for row, score in zip(rows, scores, strict=True):
            if row >= 0:
                p = self[int(row)]
                out.append(Hit(p.id, p.title, p.text, float(score)))
        return out

    def close(self) -> None:
        os.close(self._fd)


def read_jsonl_corpus(path: str | Path) -> Iterable[Passage]:
    """Passages from a JSONL file of ``{"id", "title", "text"}`` or Search-R1's
    ``{"id", "contents": "title\\ntext"}`` records."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f):
            if not line.strip():
                continue
            r = json.loads(line)
            if "contents" in r:
                title, _, text = str(r["contents"]).partition("\n")
            else:
                title, text = str(r.get("title", "")), str(r["text"])
            yield Passage(str(r.get("id", n)), title.strip('"'), text)
