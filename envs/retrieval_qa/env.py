"""``retrieval_qa``: a user asks questions turn by turn and their intent shifts (follow-up,
clarification, topic switch); the policy may ``retrieve(query)`` any number of times, then
answers in plain text, and the user speaks again.

Reward per answered user turn (``info["reward_parts"]``; the trajectory reward is their sum
over turns). Each part is weighted 0.5 and divided by the session's number of user turns, so
that long sessions do not outweigh short ones and a perfect session scores 1:

* ``answer_f1``: token F1 of the answer against this turn's gold answer and aliases.
* ``intent`` (ChatR1's intent-aware reward), before weighting: ``+0.5`` when a passage
  retrieved during this user turn is in this turn's gold evidence, ``+0.5`` when the answer
  matches this turn's gold (F1 >= 0.5), ``-0.5`` when instead it matches the previous turn's
  gold (answering the old intent).

The unweighted values are in ``info`` too (``f1``, ``intent_score``).

Every step's ``info`` carries ``intent`` (the gold label of the user turn being answered), so
that GRPO's turn-level credit compares turns of the same intent.
"""

from __future__ import annotations

from typing import Any

from agentgym.data.world import Session, SessionTurn
from agentgym.env import AgentEnv
from agentgym.envs.deep_research import config as C
from agentgym.envs.retrieval_qa.baselines import BASELINES
from agentgym.errors import ToolError
from agentgym.retrieval import RemoteRetriever
from agentgym.rewards import best_f1
from agentgym.rewards.judge import judge_for
from agentgym.tools import tool
from agentgym.types import Message

SYSTEM = (
    "You answer a user's questions in a conversation. Use retrieve to find evidence, as often "
    "as you need, then reply with a short answer in plain text."
)
MATCH = 0.5


class RetrievalQAEnv(AgentEnv):
    """Answer a conversation's questions from a retrieval index, turn by turn (ChatR1).

    See the module docstring."""

    baselines = BASELINES
    config_model = C.RetrievalQAConfig
    cfg: C.RetrievalQAConfig

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        cfg = self.cfg
        self.sessions, self.max_k = C.sessions(cfg), cfg.max_k
        self.searcher = C.searcher(cfg)
        self.session: Session = self.sessions[0]
        self.current, self.retrieved, self.scores = 0, set(), []  # type: ignore[var-annotated]

    async def arelease(self) -> None:
        if isinstance(self.searcher, RemoteRetriever):  # a client per env; local ones are shared
            await self.searcher.aclose()

    def task(self, options: dict[str, Any]) -> tuple[list[Message], dict[str, Any]]:
        index = self.task_index(len(self.sessions))
        self.session = self.sessions[index]
        self.current, self.retrieved, self.scores = 0, set(), []
        turns = [
            {
                "answer": t.answer,
                "intent": t.intent,
                "evidence": t.evidence,
                "evidence_titles": self._titles(t),
            }
            for t in self.session.turns
        ]
        first = Message(role="user", content=self.session.turns[0].user)
        return [Message(role="system", content=SYSTEM), first], {
            "session": self.session.id,
            "turns": turns,
        }

    def _titles(self, turn: SessionTurn) -> list[str]:
        if self.cfg.dataset:
            return list(turn.evidence)
        w = C.world(self.cfg.world_size, self.cfg.world_seed)
        return [w.name(int(d[1:])) for d in turn.evidence if d[1:].isdigit()]

    async def astep(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Every step is labelled with the intent of the user turn it answers (malformed
        steps too), for GRPO's turn-level credit."""
        intent = self.turn_gold.intent
        obs, reward, terminated, truncated, info = await super().astep(action)
        info["intent"] = intent
        return obs, reward, terminated, truncated, info

    @property
    def turn_gold(self) -> SessionTurn:
        return self.session.turns[self.current]

    @tool
    async def retrieve(self, query: str, k: int = 3) -> str:
        """Search the knowledge base.

        Args:
            query: What to look for; make it stand alone (name the entity, not "they").
            k: How many passages to return (1-10).
        """
        if not query.strip():
            raise ToolError("the query is empty; write what you are looking for")
        hits = await self.searcher.asearch(query.strip(), max(1, min(k, self.max_k)))
        self.retrieved |= {h.id for h in hits} | {h.title for h in hits}
        if not hits:
            return f"No passages match {query!r}."
        return "\n".join(f"[{i}] {h.title}: {h.text}" for i, h in enumerate(hits, 1))

    async def aon_reply(self, content: str) -> list[Message]:
        if self.cfg.judge is not None:  # other episodes run while the judge thinks
            gold = self.turn_gold
            verdict = await judge_for(self.cfg.judge).score(gold.user, content, gold.answer)
            self.add_reward("judge", verdict.part / len(self.session.turns))
            self.label(judge=verdict.info())
        return self.on_reply(content)

    def on_reply(self, content: str) -> list[Message]:
        gold = self.turn_gold
        f1 = best_f1(content, gold.aliases or [gold.answer])
        on_evidence = bool(self.retrieved & set(gold.evidence))
        stale = (
            self.current > 0
            and f1 < MATCH
            and best_f1(content, self.session.turns[self.current - 1].aliases) >= MATCH
        )
        intent = 0.5 * on_evidence + 0.5 * (f1 >= MATCH) - 0.5 * stale
        weight = 0.5 / len(self.session.turns)
        self.add_reward("answer_f1", weight * f1)
        self.add_reward("intent", weight * intent)
        self.label(f1=f1, intent_score=intent)
        self.scores.append(f1)
        self.current, self.retrieved = self.current + 1, set()
        if self.current == len(self.session.turns):
            self.end(success=min(self.scores) >= MATCH, mean_f1=sum(self.scores) / len(self.scores))
            return []
        return [Message(role="user", content=self.turn_gold.user)]
