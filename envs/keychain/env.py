"""``keychain``: LoongRL's long-context task. Follow a chain of UUIDs from the start key to the
hidden question, ignore the decoy chains, answer from the documents.

Single-turn by default: the context and the instruction in one user message, the answer as
``<answer>...</answer>``. ``mode=tools`` is for short windows: the context stays with the
environment and the policy calls ``lookup(key)``, ``read(part)`` and ``answer(text)``.

Reward: ``answer`` = LoongRL's two-way substring match against the gold answer and aliases;
``format`` = a penalty when no answer is given in the asked form. ``info``: ``f1``,
``named_question`` (the reply quotes the true question), ``followed_decoy`` (it quotes a
decoy's), ``chain_length``, ``context_tokens``, ``evidence_depth``.

``preset=niah`` sweeps context length x evidence depth over tasks (task t gets grid cell
t mod cells); ``agentgym eval`` then reports accuracy per cell and the report draws a heat map.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from agentgym.data.keychain import KeyChain, synthesize
from agentgym.env import AgentEnv
from agentgym.envs.keychain import config as C
from agentgym.envs.keychain.baselines import BASELINES
from agentgym.errors import ToolError
from agentgym.rewards import best_f1, mentions, normalize, substring_match
from agentgym.tools import Tool, tool
from agentgym.types import Message

ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)


class KeyChainEnv(AgentEnv):
    """Follow a chain of keys through a long context to the answer (LoongRL's KeyChain).

    See the module docstring."""

    baselines = BASELINES
    config_model = C.KeyChainConfig
    cfg: C.KeyChainConfig

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        cfg = self.cfg
        self.questions, self.texts, self.pool = C.data(cfg)
        self.kc: KeyChain | None = None
        self.parts: list[str] = []

    def _cell(self, task: int) -> tuple[int, float | None, int]:
        cfg = self.cfg
        if cfg.preset != "niah":
            return cfg.context_tokens, cfg.evidence_depth, task
        cells = [(n, d) for n in cfg.niah_lengths for d in cfg.niah_depths]
        n, d = cells[task % len(cells)]
        return n, d, task // len(cells)

    def task(self, options: dict[str, Any]) -> tuple[list[Message], dict[str, Any]]:
        seed = (
            self.task_seed if self.task_seed is not None else int(self.np_random.integers(1 << 30))
        )
        length, depth, index = self._cell(seed)
        q = self.questions[index % len(self.questions)]
        rng = np.random.default_rng([self.cfg.task_seed, seed])
        others = [x for x in self.questions if x.question != q.question and x.answer != q.answer]
        decoys = [others[int(i)] for i in rng.choice(len(others), self.cfg.decoys, replace=False)]
        kc = synthesize(
            q.question,
            [self.texts[d] for d in q.supporting if d in self.texts],
            self.pool,
            [d.question for d in decoys],
            length,
            rng,
            self.cfg.chain_length,
            depth,
        )
        self.kc, self.q, self.decoys = kc, q, decoys
        self.parts = self._split(kc, self.cfg.part_tokens) if self.cfg.mode == "tools" else []
        self._length, self._depth = length, round(kc.evidence_depth, 2)
        info = {
            "answer": q.answer,
            "decoy_starts": kc.decoy_starts,
            "decoy_answers": [d.answer for d in decoys],
            "chain_length": len(kc.chain),
            "context_tokens": kc.tokens,
            "evidence_depth": kc.evidence_depth,
        }
        if self.cfg.mode == "single":
            text = f"{kc.context}\n\n{kc.instruction}"
        else:
            text = (
                f"{kc.instruction.replace(' Give the answer as <answer>...</answer>.', '')} The "
                f"context has {len(self.parts)} parts: read(part) shows one, lookup(key) finds "
                "a key's value, answer(text) gives your answer."
            )
        return [Message(role="user", content=text)], info

    @staticmethod
    def _split(kc: KeyChain, part_tokens: int) -> list[str]:
        """The context in parts of about ``part_tokens`` tokens (tools mode's ``read``)."""
        words = kc.context.split(" ")
        size = max(1, int(part_tokens * len(words) / max(1, kc.tokens)))
        return [" ".join(words[i : i + size]) for i in range(0, len(words), size)]

    def _score(self, reply: str, prediction: str) -> None:
        golds = self.q.aliases or [self.q.answer]
        # hedging between the true answer and a decoy's is not an answer
        hedged = any(
            mentions(prediction, d.answer) and not any(mentions(g, d.answer) for g in golds)
            for d in self.decoys
        )
        match = 0.0 if hedged else substring_match(prediction, golds)
        self.add_reward("answer", match)
        said = normalize(reply)
        self.end(
            success=match == 1.0,
            f1=best_f1(prediction, golds),
            named_question=normalize(self.q.question) in said,
            followed_decoy=any(normalize(d.question) in said for d in self.decoys),
            prediction=prediction,
            chain_length=len(self.kc.chain) if self.kc else 0,
            grid={"context_tokens": self._length, "evidence_depth": self._depth},
        )

    def on_reply(self, content: str) -> list[Message]:
        found = ANSWER.findall(content)
        if not found:
            self.add_reward("format", -self.format_penalty)
            if self.cfg.mode == "tools":
                return [Message(role="user", content="Give your answer with answer(text).")]
        self._score(content, found[-1].strip() if found else "")
        return []

    @tool
    def lookup(self, key: str) -> str:
        """Find the value of a key in the context.

        Args:
            key: The key (a UUID).
        """
        assert self.kc is not None
        m = re.search(rf'The value of key {re.escape(key.strip())} is "(.*?)"\.', self.kc.context)
        if m is None:
            raise ToolError(f"no key {key!r} in the context")
        return m.group(1)

    @tool
    def read(self, part: int) -> str:
        """Read one part of the context.

        Args:
            part: Which part (1 is the first).
        """
        parts = self.parts
        if not 1 <= part <= len(parts):
            raise ToolError(f"part {part} does not exist; parts are 1-{len(parts)}")
        return parts[part - 1]

    @tool
    def answer(self, text: str) -> str:
        """Give the final answer; this ends the episode.

        Args:
            text: The answer, a short phrase.
        """
        self._score(text, text)
        return "Answer recorded."

    def active_tools(self) -> dict[str, Tool]:
        return self.tools if self.cfg.mode == "tools" else {}
