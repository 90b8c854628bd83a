"""Config of ``agentgym serve retrieval`` and ``agentgym index`` (``conf/serve.yaml``,
``conf/index.yaml``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agentgym.retrieval.dense import DEFAULT_ENCODER


class ServeConfig(BaseModel):
    """``agentgym serve retrieval``."""

    model_config = ConfigDict(extra="forbid")

    index: str | None = Field(None, description="a built index folder (None: the world's)")
    world_size: int = Field(2000, ge=100, description="index=None: the world's pages")
    world_seed: int = Field(0, description="index=None: the world's seed")
    method: Literal["bm25", "dense", "hybrid"] = Field(
        "bm25", description="the search the server answers with"
    )
    host: str = Field("127.0.0.1", description="the address to listen on")
    port: int = Field(8000, ge=0, le=65535, description="the port to listen on (0: any free)")


class IndexConfig(BaseModel):
    """``agentgym index``."""

    model_config = ConfigDict(extra="forbid")

    corpus: str = Field(description="passages: JSONL (id, title, text) or a public-format file")
    out: str = Field(description="the index folder to write")
    methods: tuple[Literal["bm25", "dense"], ...] = Field(
        ("bm25",), min_length=1, description="the indexes built (hybrid search needs both)"
    )
    faiss: Literal["flat", "hnsw", "ivf"] = Field("hnsw", description="the dense index's kind")
    encoder: str = Field(DEFAULT_ENCODER, description="the sentence-transformers model (dense)")
