"""``env.*`` keys of ``deep_research`` and ``retrieval_qa``, validated before any work starts,
and the shared, per-process resources they name (world, questions, index, local site)."""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import Field, model_validator

from agentgym.data.world import Question, Session, World, make_questions, make_sessions
from agentgym.data.world.site import shared_site, world_index
from agentgym.env import AgentEnvConfig
from agentgym.retrieval import RemoteRetriever, Retriever, open_index
from agentgym.rewards.judge import JudgeConfig


class SearchConfig(AgentEnvConfig):
    """Where questions come from and how search works (keys shared by both environments)."""

    world_size: int = Field(2000, ge=100, description="entities (= pages) of the world")
    world_seed: int = Field(0, description="seed of the generated world")
    tasks: int = Field(500, ge=1, description="how many questions/sessions to draw")
    task_seed: int = Field(0, description="seed of the drawn questions/sessions")
    dataset: str | None = Field(None, description="a local public-format file (see loaders)")
    unscorable_rows: Literal["error", "drop"] = Field(
        "error", description="dataset rows whose gold answers normalise to nothing (they would "
        "pay an empty reply): error names the row, drop skips them with a count",
    )  # fmt: skip
    retrieval: Literal["bm25", "dense", "hybrid"] = Field(
        "bm25", description="the world's index (built once, cached in ~/.cache/agentgym)"
    )
    index: str | None = Field(None, description="a built index folder instead of the world's")
    retrieval_url: str | None = Field(None, description="an `agentgym serve retrieval` URL")
    max_k: int = Field(10, ge=1, le=100, description="most results one search may return")
    judge: JudgeConfig | None = Field(
        None, description="an LLM judge's reward part beside F1 (agentgym/rewards/judge.py)"
    )

    @model_validator(mode="after")
    def _one_source(self) -> SearchConfig:
        if self.index and self.retrieval_url:
            raise ValueError("give index or retrieval_url, not both")
        return self


class RetrievalQAConfig(SearchConfig):
    session_turns: tuple[int, int] = Field(
        (3, 8), description="user turns of a generated conversation: the fewest and the most"
    )
    max_turns: int = Field(24, ge=1, description="assistant turns before the episode is cut")


class DeepResearchConfig(SearchConfig):
    max_turns: int = Field(10, ge=1, description="assistant turns before the episode is cut")
    hops: tuple[int, ...] = Field((2, 3, 4), description="bridge-question difficulty")
    kinds: tuple[Literal["bridge", "comparison", "intersection"], ...] = Field(
        ("bridge", "comparison", "intersection"), description="the question kinds drawn"
    )
    web: Literal["local", "internet"] = Field(
        "local", description="local: the world's pages over HTTP; internet: needs searxng_url"
    )
    searxng_url: str | None = Field(None, description="web=internet: a SearXNG base URL")
    page_words: int = Field(300, ge=20, description="open_page reads pages in parts this long")

    @model_validator(mode="after")
    def _web(self) -> DeepResearchConfig:
        if self.web == "internet" and not self.searxng_url:
            raise ValueError("web=internet needs searxng_url (a SearXNG instance's base URL)")
        if self.dataset and self.web == "local" and not (self.index or self.retrieval_url):
            raise ValueError(
                "questions from a dataset need their corpus: index=<a built index folder> or "
                "retrieval_url=<a retrieval server> (or web=internet); the local web is the "
                "fictional world's"
            )
        return self


@cache
def world(size: int, seed: int) -> World:
    return World(size, seed)


@cache
def questions(cfg: DeepResearchConfig) -> list[Question]:
    if cfg.dataset:
        from agentgym.data.loaders import load_questions

        return load_questions(cfg.dataset, cfg.unscorable_rows)[: cfg.tasks]
    w = world(cfg.world_size, cfg.world_seed)
    return make_questions(
        w, cfg.tasks, seed=cfg.task_seed, hops=tuple(cfg.hops), kinds=tuple(cfg.kinds)
    )


@cache
def sessions(cfg: RetrievalQAConfig) -> list[Session]:
    if cfg.dataset:
        from agentgym.data.loaders import load_sessions

        return load_sessions(cfg.dataset, cfg.unscorable_rows)[: cfg.tasks]
    w = world(cfg.world_size, cfg.world_seed)
    return make_sessions(w, cfg.tasks, seed=cfg.task_seed, lengths=cfg.session_turns)


def searcher(cfg: SearchConfig) -> Retriever | RemoteRetriever:
    """The search backend: a server (a client per env: it holds a connection pool), a user's
    index, or the world's own (built once, opened once per process)."""
    if cfg.retrieval_url:
        return RemoteRetriever(cfg.retrieval_url)
    return _local_searcher(cfg)


@cache
def _local_searcher(cfg: SearchConfig) -> Retriever:
    if cfg.index:
        return open_index(cfg.index, cfg.retrieval)
    methods = ("bm25", "dense") if cfg.retrieval == "hybrid" else (cfg.retrieval,)
    return open_index(world_index(world(cfg.world_size, cfg.world_seed), methods), cfg.retrieval)


def site_url(cfg: SearchConfig) -> str:
    return shared_site(cfg.world_size, cfg.world_seed).url
