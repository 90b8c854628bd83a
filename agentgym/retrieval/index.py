"""Build an index folder once, open it many times.

An index folder holds the corpus (``corpus.jsonl`` + ``offsets.npy``), a BM25 index
(``bm25/``), a faiss index (``dense.faiss``) or both, and ``meta.json``::

    build_index("idx/", passages, methods=("bm25", "dense"), faiss_kind="hnsw")
    retriever = open_index("idx/", method="hybrid")
    retriever.search(["who founded Velmora Press?"], k=5)  # -> [[Hit, ...]]

``hybrid`` fuses the BM25 and dense rankings with reciprocal-rank fusion (k=60).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from agentgym.errors import ConfigError
from agentgym.retrieval.bm25 import BM25, build_bm25
from agentgym.retrieval.corpus import Corpus, Hit, Passage
from agentgym.retrieval.dense import DEFAULT_ENCODER, Dense, encode, make_faiss_index

METHODS = ("bm25", "dense", "hybrid")
RRF_K = 60


def build_index(
    folder: str | Path,
    passages: Iterable[Passage],
    methods: Sequence[str] = ("bm25",),
    faiss_kind: str = "hnsw",
    encoder: str = DEFAULT_ENCODER,
    on_progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write corpus and indexes for ``methods`` (``bm25``, ``dense``) into ``folder``;
    ``on_progress(done, total)`` as the dense encoder goes (the slow part).

    The folder is written under a temporary name and renamed at the end, so a crash never
    leaves a half-built index where ``open_index`` would find it.
    """
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    texts: list[str] = []

    def keep_text(ps: Iterable[Passage]) -> Iterator[Passage]:  # the corpus is written once
        for p in ps:
            texts.append(p.contents)
            yield p

    n = Corpus.write(tmp, keep_text(passages))
    if "bm25" in methods:
        (tmp / "bm25").mkdir()
        build_bm25(tmp / "bm25", texts)
    if "dense" in methods:
        import faiss

        faiss.write_index(
            make_faiss_index(encode(texts, encoder, on_progress=on_progress), faiss_kind),
            str(tmp / "dense.faiss"),
        )
    meta = {"size": n, "methods": list(methods), "faiss": faiss_kind, "encoder": encoder}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


class Retriever:
    """Search an index folder with one method. ``search`` is batched and synchronous;
    ``asearch`` runs it in a worker thread so that an event loop of episodes keeps going."""

    def __init__(self, folder: str | Path, method: str = "bm25") -> None:
        folder = Path(folder)
        if not (folder / "meta.json").exists():
            raise ConfigError(
                "index",
                f"{folder} is not an index folder (no meta.json)",
                "build one with `agentgym index` or agentgym.retrieval.build_index",
            )
        self.meta = json.loads((folder / "meta.json").read_text())
        need = ["bm25", "dense"] if method == "hybrid" else [method]
        if method not in METHODS or any(m not in self.meta["methods"] for m in need):
            raise ConfigError(
                "method",
                f"{method!r} is not available in {folder} (it has {self.meta['methods']})",
                f"use one of {self.meta['methods']} or rebuild with those methods",
            )
        self.method, self.corpus = method, Corpus(folder)
        self.bm25 = BM25(folder / "bm25", self.corpus) if "bm25" in need else None
        self.dense = (
            Dense(folder / "dense.faiss", self.corpus, self.meta["encoder"])
            if "dense" in need
            else None
        )

    def __len__(self) -> int:
        return len(self.corpus)

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        """The top ``k`` hits for each query (fewer when fewer passages match; none for a
        blank query)."""
        live = [i for i, q in enumerate(queries) if q.strip()]
        found = self._search([queries[i] for i in live], k) if live else []
        out: list[list[Hit]] = [[] for _ in queries]
        for i, hits in zip(live, found, strict=True):
            out[i] = hits
        return out

    def _search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        if self.bm25 is not None and self.dense is not None:
            deep = max(k, 50)
            return [
                rrf([a, b], k)
                for a, b in zip(
                    self.bm25.search(queries, deep), self.dense.search(queries, deep), strict=True
                )
            ]
        engine = self.bm25 or self.dense
        assert engine is not None
        return engine.search(queries, k)

    async def asearch(self, query: str, k: int) -> list[Hit]:
        return (await asyncio.to_thread(self.search, [query], k))[0]

    def close(self) -> None:
        self.corpus.close()


def rrf(rankings: Sequence[Sequence[Hit]], k: int) -> list[Hit]:
    """Reciprocal-rank fusion: score = sum over rankings of 1 / (60 + rank)."""
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking):
            scores[hit.id] = scores.get(hit.id, 0.0) + 1.0 / (RRF_K + rank + 1)
            first.setdefault(hit.id, hit)
    best = sorted(scores, key=lambda i: -scores[i])[:k]
    return [Hit(i, first[i].title, first[i].text, scores[i]) for i in best]


def open_index(folder: str | Path, method: str = "bm25") -> Retriever:
    """Open a built index folder for searching with ``method``."""
    return Retriever(folder, method)
