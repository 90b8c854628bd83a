"""Retrieval: BM25 (bm25s), dense (faiss + a sentence-embedding model) and hybrid search over
an index folder built once and memory-mapped; the same index in-process or over HTTP."""

from agentgym.retrieval.client import RemoteRetriever
from agentgym.retrieval.corpus import Corpus, Hit, Passage, read_jsonl_corpus
from agentgym.retrieval.index import METHODS, Retriever, build_index, open_index, rrf

__all__ = [
    "METHODS",
    "Corpus",
    "Hit",
    "Passage",
    "RemoteRetriever",
    "Retriever",
    "build_index",
    "open_index",
    "read_jsonl_corpus",
    "rrf",
]
