"""Real indexes over the fictional world: BM25 (bm25s), dense (faiss + MiniLM), hybrid."""

import numpy as np
import pytest

from agentgym.data.world import World, make_questions
from agentgym.data.world.site import passages, world_index
from agentgym.errors import ConfigError
from agentgym.retrieval import Hit, Passage, build_index, open_index, rrf

WORLD = World(3000, seed=11)


@pytest.fixture(scope="module")
def folder():
    return world_index(WORLD, ("bm25", "dense"))


def recall_at_10(retriever, questions):
    """Share of supporting documents among the top 10 for the question's text."""
    found = total = 0
    hits = retriever.search([q.question for q in questions], 10)
    for q, h in zip(questions, hits, strict=True):
        ids = {x.id for x in h}
        found += sum(d in ids for d in q.supporting[:1])
        total += 1
    return found / total


@pytest.mark.slow
def test_recall_at_10_of_the_first_hop_document(folder):
    """The first supporting document is named in the question: every method finds it."""
    questions = make_questions(WORLD, 200, seed=3, kinds=("bridge", "comparison"))
    scores = {
        m: recall_at_10(open_index(folder, m), questions) for m in ("bm25", "dense", "hybrid")
    }
    assert scores["bm25"] >= 0.9, scores
    assert scores["dense"] >= 0.6, scores
    assert scores["hybrid"] >= scores["dense"] - 0.02, scores


def test_index_reopens_memory_mapped_with_the_same_results(folder, tmp_path):
    r1, r2 = open_index(folder, "bm25"), open_index(folder, "bm25")
    assert r1.search(["painter born in"], 5) == r2.search(["painter born in"], 5)
    assert isinstance(r1.bm25._index.scores["data"], np.memmap)


def test_blank_queries_huge_k_and_unknown_words(folder):
    r = open_index(folder, "bm25")
    out = r.search(["", "   ", "zzqxj", WORLD.name(5)], 10**9)
    assert out[0] == [] and out[1] == [] and out[2] == []
    assert out[3][0].title == WORLD.name(5) and len(out[3]) <= len(r)


def test_missing_method_and_folder_are_config_errors(tmp_path):
    folder = build_index(tmp_path / "i", [Passage("a", "A", "alpha text")] * 3, methods=("bm25",))
    with pytest.raises(ConfigError, match="dense"):
        open_index(folder, "dense")
    with pytest.raises(ConfigError, match="not an index folder"):
        open_index(tmp_path / "nothing")


def test_build_is_atomic_and_corpus_round_trips(tmp_path):
    docs = list(passages(World(200, seed=1)))
    folder = build_index(tmp_path / "idx", docs)
    r = open_index(folder)
    assert [r.corpus[i] for i in range(len(docs))] == docs
    assert not (tmp_path / "idx.building").exists()


def test_rrf_by_hand():
    a = [Hit("x", "", "", 9), Hit("y", "", "", 8)]
    b = [Hit("y", "", "", 0.9), Hit("z", "", "", 0.8)]
    fused = rrf([a, b], 3)
    assert [h.id for h in fused] == ["y", "x", "z"]
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)


def test_agentgym_index_reads_search_r1_and_hotpotqa_corpora(tmp_path):
    import json

    from agentgym.cli import main
    from tests.data.test_loaders import HOTPOT

    rows = [{"id": "1", "contents": '"Velmora Press"\nVelmora Press is a publisher.'},
            {"id": "2", "contents": '"Other"\nSomething else.'}]  # fmt: skip
    (tmp_path / "wiki.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert main(["index", f"corpus={tmp_path / 'wiki.jsonl'}", f"out={tmp_path / 'a'}"]) == 0
    [hit] = open_index(tmp_path / "a").search(["publisher"], 5)[0][:1]
    assert (hit.id, hit.title) == ("1", "Velmora Press")
    (tmp_path / "hotpot.json").write_text(json.dumps(HOTPOT))
    assert main(["index", f"corpus={tmp_path / 'hotpot.json'}", f"out={tmp_path / 'b'}"]) == 0
    assert len(open_index(tmp_path / "b")) == 3
    (tmp_path / "empty.jsonl").write_text("")
    assert main(["index", f"corpus={tmp_path / 'empty.jsonl'}", f"out={tmp_path / 'c'}"]) == 2


def test_dense_encoding_reports_progress_in_chunks():
    from agentgym.retrieval.dense import encode

    seen = []
    vectors = encode(
        [f"text {i}" for i in range(300)], batch_size=16, on_progress=lambda *a: seen.append(a)
    )
    assert vectors.shape[0] == 300 and seen == [(128, 300), (256, 300), (300, 300)]


@pytest.mark.parametrize("method", ["bm25", "dense"])
def test_concurrent_asearch_calls_are_batched_with_each_ones_own_results(folder, method):
    import asyncio

    r = open_index(folder, method)
    queries = [(WORLD.name(i), 3 + i % 4) for i in range(24)]
    calls: list[int] = []
    search = r._batcher._search

    def counted(qs, k):
        calls.append(len(qs))
        return search(qs, k)

    r._batcher._search = counted

    async def go():
        return await asyncio.gather(*(r.asearch(q, k) for q, k in queries))

    got = asyncio.run(go())
    alone = [r.search([q], k)[0] for q, k in queries]
    # each its own k and hits; a dense score moves in the 7th digit with the batch's padding
    assert [[h.id for h in hs] for hs in got] == [[h.id for h in hs] for hs in alone]
    for hs, ws in zip(got, alone, strict=True):
        assert [h.score for h in hs] == pytest.approx([w.score for w in ws], abs=1e-5)
    assert sum(calls) == 24 and len(calls) <= 8, calls  # a batch per distinct k (4 of them)
    assert [[h.id for h in hs] for hs in asyncio.run(go())] == [[h.id for h in hs] for hs in got]


def test_a_failing_batch_fails_every_call_in_it_and_the_next_batch_runs(folder):
    import asyncio

    r = open_index(folder, "bm25")
    search, broken = r._batcher._search, [True]

    def flaky(qs, k):
        if broken.pop() if broken else False:
            raise OSError("index gone")
        return search(qs, k)

    r._batcher._search = flaky

    async def go():
        first = await asyncio.gather(*(r.asearch("x", 1) for _ in range(3)), return_exceptions=True)
        return first, await r.asearch(WORLD.name(1), 2)

    first, later = asyncio.run(go())
    assert all(isinstance(e, OSError) for e in first) and len(later) == 2
