"""Config of ``agentgym serve retrieval`` and ``agentgym index`` (``conf/serve.yaml``,
``conf/index.yaml``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agentgym.retrieval.dense import DEFAULT_ENCODER


class ServeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: str | None = None
    world_size: int = Field(2000, ge=100)
    world_seed: int = 0
    method: Literal["bm25", "dense", "hybrid"] = "bm25"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)


class IndexConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    corpus: str
    out: str
    methods: tuple[Literal["bm25", "dense"], ...] = Field(("bm25",), min_length=1)
    faiss: Literal["flat", "hnsw", "ivf"] = "hnsw"
    encoder: str = DEFAULT_ENCODER
