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
import weakref
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


class QueryBatcher:
    """Gathers the one-query calls of concurrent episodes into batched ``search`` calls.

    A call that finds no batch running starts one in a worker thread (so the event loop of
    episodes keeps going); calls that arrive while it runs wait and go together in the next.
    One query costs one encoder forward or one BM25 pass either way; 64 episodes searching at
    once cost a few batches, not 64 thread hops and 64 forwards. Per event loop (an env driven
    synchronously has a private loop of its own)."""

    def __init__(self, search: Callable[[Sequence[str], int], list[list[Hit]]]) -> None:
        self._search = search
        self._queues: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, list[tuple[str, int, asyncio.Future[list[Hit]]]]
        ] = weakref.WeakKeyDictionary()
        self._draining: set[asyncio.Task[None]] = set()

    async def __call__(self, query: str, k: int) -> list[Hit]:
        loop = asyncio.get_running_loop()
        waiting = loop.create_future()
        queue = self._queues.setdefault(loop, [])
        queue.append((query, k, waiting))
        if len(queue) == 1:
            task = loop.create_task(self._drain(queue))
            self._draining.add(task)
            task.add_done_callback(self._draining.discard)
        return await waiting

    async def _drain(self, queue: list[tuple[str, int, asyncio.Future[list[Hit]]]]) -> None:
        while queue:
            await asyncio.sleep(0)  # let the calls of this loop's turn join the batch
            batch = queue[:]
            found: dict[int, list[Hit]] = {}
            error: Exception | None = None
            try:
                found = await asyncio.to_thread(self._by_k, [(q, k) for q, k, _ in batch])
            except Exception as exc:  # every caller of the batch sees the fault
                error = exc
            del queue[: len(batch)]
            for i, (_, _, waiting) in enumerate(batch):
                if waiting.done():
                    continue
                if error is not None:
                    waiting.set_exception(error)
                else:
                    waiting.set_result(found[i])

    def _by_k(self, calls: list[tuple[str, int]]) -> dict[int, list[Hit]]:
        """One ``search`` per distinct ``k`` (a larger k cut down could order ties otherwise:
        a call's hits must not depend on which calls it was batched with)."""
        found: dict[int, list[Hit]] = {}
        for k in sorted({k for _, k in calls}):
            idx = [i for i, (_, want) in enumerate(calls) if want == k]
            for i, hits in zip(idx, self._search([calls[i][0] for i in idx], k), strict=True):
                found[i] = hits
        return found


class Retriever:
    """Search an index folder with one method. ``search`` is batched and synchronous;
    ``asearch`` batches the calls of concurrent episodes (``QueryBatcher``) and runs them in a
    worker thread so that an event loop of episodes keeps going."""

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
        self._batcher = QueryBatcher(self.search)
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
        """The top ``k`` hits for ``query``, searched together with the concurrent calls."""
        return await self._batcher(query, k)

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
