"""Retrieval latency and quality on the fictional world, at growing corpus sizes.

BM25 (bm25s) and faiss ANN indexes (HNSW, IVF) next to Search-R1's default approach, a flat
inner-product index, measured in the same run: index build time, single-query latency
(p50/p99, k=10), recall@10 of the question's first supporting page, and for ANN indexes the
share of the flat index's top 10 they return (ANN recall). Query embedding time (MiniLM on
this CPU) is reported apart from index search time.

MiniLM embeds ~135 pages/s on 2 cores, so pages beyond ``--dense-real`` get vectors made from
the real ones (a real page's embedding plus noise, re-normalised; labelled "synthetic") to
measure faiss at 1M. Usage: python bench/retrieval.py [--sizes 10000 100000 1000000]

``--tool-calls N`` instead measures what an episode waits for: the end-to-end latency of one
``search`` tool call (``Retriever.asearch``: encoding included) while N episodes search at
once, batched across episodes (now) against one thread hop and one search per call (before),
rounds alternating; min / p50 / max per call and the ratio of p50s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

import numpy as np

from agentgym.data.world import World, make_questions
from agentgym.data.world.site import passages
from agentgym.retrieval import build_index, open_index
from agentgym.retrieval.dense import encode, make_faiss_index, tune


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, q))


def timed(fn, items) -> tuple[list, list[float]]:
    out, times = [], []
    for x in items:
        t = time.perf_counter()
        out.append(fn(x))
        times.append(time.perf_counter() - t)
    return out, times


def bm25_row(world: World, questions, tmp: str) -> None:
    t = time.perf_counter()
    folder = build_index(f"{tmp}/bm25-{world.size}", passages(world), methods=("bm25",))
    build = time.perf_counter() - t
    r = open_index(folder, "bm25")
    hits, times = timed(lambda q: r.search([q.question], 10)[0], questions)
    recall = np.mean(
        [q.supporting[0] in {h.id for h in hs} for q, hs in zip(questions, hits, strict=True)]
    )
    print(
        f"{world.size:>9} bm25        build {build:7.1f}s  p50 {pct(times, 50):6.2f} ms  "
        f"p99 {pct(times, 99):6.2f} ms  recall@10 {recall:.3f}"
    )


def vectors_for(world: World, real: int) -> tuple[np.ndarray, str]:
    n = min(real, world.size)
    base = encode(
        [p.contents for p in passages(World(n, world.seed))]
        if n == world.size
        else [world.document(i).title + "\n" + world.document(i).text for i in range(n)]
    )
    if n == world.size:
        return base, "real"
    rng = np.random.default_rng(0)
    extra = base[rng.integers(0, n, world.size - n)] + rng.normal(
        0, 0.05, (world.size - n, base.shape[1])
    )
    vecs = np.vstack([base, extra]).astype(np.float32)
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True), "synthetic"


def dense_rows(world: World, questions, real: int, kinds: list[str]) -> None:
    t = time.perf_counter()
    qvecs = encode([q.question for q in questions])
    embed_ms = (time.perf_counter() - t) / len(questions) * 1000
    vecs, origin = vectors_for(world, real)
    flat_top = None
    for kind in ["flat", *kinds]:
        t = time.perf_counter()
        index = tune(make_faiss_index(vecs, kind))
        build = time.perf_counter() - t
        tops, times = timed(lambda v, ix=index: ix.search(v[None], 10)[1][0], qvecs)
        recall = np.mean(
            [int(q.supporting[0][1:]) in set(top) for q, top in zip(questions, tops, strict=True)]
        )
        if kind == "flat":
            flat_top, ann = tops, 1.0
        else:
            ann = np.mean(
                [len(set(a) & set(b)) / 10 for a, b in zip(tops, flat_top or [], strict=True)]
            )
        print(
            f"{world.size:>9} {kind:<11} build {build:7.1f}s  p50 {pct(times, 50):6.2f} ms  "
            f"p99 {pct(times, 99):6.2f} ms  recall@10 {recall:.3f}  ANN recall {ann:.3f}  "
            f"({origin} vectors; +{embed_ms:.1f} ms to embed a query)"
        )


async def _calls(retriever, queries: list[str], batched: bool) -> list[float]:
    """Per-call seconds of ``len(queries)`` concurrent tool calls."""

    async def one(q: str) -> float:
        t = time.perf_counter()
        if batched:
            await retriever.asearch(q, 10)
        else:
            await asyncio.to_thread(retriever.search, [q], 10)
        return time.perf_counter() - t

    return list(await asyncio.gather(*(one(q) for q in queries)))


def tool_calls(n: int, rounds: int = 5) -> None:
    world = World(5_000, seed=0)  # its dense index builds in about a minute here
    questions = make_questions(world, n * rounds, seed=1, kinds=("bridge", "comparison"))
    with tempfile.TemporaryDirectory() as tmp:
        build_index(tmp, passages(world), ("bm25", "dense"))
        for method in ("bm25", "dense"):
            r = open_index(tmp, method)
            got: dict[bool, list[float]] = {True: [], False: []}
            for i in range(rounds):
                qs = [q.question for q in questions[i * n : (i + 1) * n]]
                for batched in (True, False) if i % 2 == 0 else (False, True):
                    got[batched] += asyncio.run(_calls(r, qs, batched))
            for batched, xs in got.items():
                label = "batched" if batched else "per call"
                print(
                    f"{method:<6} {n} concurrent calls, {label:<8}: ms per call "
                    f"{pct(xs, 0):.1f} / {pct(xs, 50):.1f} / {pct(xs, 100):.1f} (min/p50/max)"
                )
            ratio = statistics.median(got[True]) / statistics.median(got[False])
            print(f"{method:<6} batched / per call (p50): {ratio:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--dense-real", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--hnsw-max", type=int, default=200_000, help="largest size to build HNSW at")
    ap.add_argument("--tool-calls", type=int, default=0, help="concurrent search tool calls")
    args = ap.parse_args()
    if args.tool_calls:
        tool_calls(args.tool_calls)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            world = World(size, seed=0)
            questions = make_questions(world, args.queries, seed=1, kinds=("bridge", "comparison"))
            bm25_row(world, questions, tmp)
            kinds = ["hnsw", "ivf"] if size <= args.hnsw_max else ["ivf"]
            dense_rows(world, questions, args.dense_real, kinds)


if __name__ == "__main__":
    main()
