"""``deep_research``: answer multi-hop questions with ``search``, ``open_page``, ``judge`` and
``answer`` (DeepResearcher's tools and F1 reward, ReSeek's JUDGE action and process rewards).

Reward (``info["reward_parts"]``): ``answer_f1`` (token F1 of the answer against the gold
answer and its aliases) and ``format`` (a penalty for each malformed turn). Process rewards
per turn (``info["signals"]``, not in the reward; a trainer credits them with
``trainer.turn_reward_parts``):

* ``retrieval_correct``: 1 when a supporting document was in this turn's search results or
  was opened this turn, for the first time that way (a search that finds it again, or a page
  opened again, earns nothing: the signal cannot be farmed by repeating a call); at most 1 a
  turn.
* ``retrieval_useful``: the share of supporting documents first seen this turn *on the
  reasoning path* (for bridge questions: the previous hop's document was already seen).
* ``judge_correct``: the first ``judge`` call after a search or page: +1 when it rightly
  calls the results useful (they brought a supporting document not seen before), 0 when it
  rightly calls them useless, -1 when it is wrong. Positive credit is thus bounded by the
  supporting documents: useless searches judged useless, over and over, earn nothing.

The end ``info`` carries ``f1``, ``em``, the answer and the gold answer.
"""

from __future__ import annotations

from typing import Any

from agentgym.env import AgentEnv
from agentgym.envs.deep_research import config as C
from agentgym.envs.deep_research.baselines import BASELINES
from agentgym.envs.deep_research.web import IndexWeb, InternetWeb, LocalWeb, Web
from agentgym.errors import ToolError
from agentgym.rewards import best_em, best_f1
from agentgym.rewards.judge import judge_for
from agentgym.tools import tool
from agentgym.types import Message

PROMPT = (
    "Answer the question by researching it. Use search to find pages, open_page to read "
    "them, judge to assess what you found and plan the next step, and answer to give your "
    "final answer (a short phrase). Question: {question}"
)


class DeepResearchEnv(AgentEnv):
    """Answer multi-hop questions by searching and reading an offline web (DeepResearcher).

    See the module docstring."""

    baselines = BASELINES
    config_model = C.DeepResearchConfig
    cfg: C.DeepResearchConfig

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        cfg = self.cfg
        self.questions = C.questions(cfg)
        self.web: Web = (
            InternetWeb(cfg.searxng_url or "")
            if cfg.web == "internet"
            else IndexWeb(C.searcher(cfg))
            if cfg.dataset
            else LocalWeb(C.searcher(cfg), C.site_url(cfg))
        )
        self.max_k, self.page_words = cfg.max_k, cfg.page_words
        self.question = self.questions[0]
        self.seen: set[str] = set()
        self._last_found: set[str] = set()
        self._credited: set[tuple[str, str]] = set()  # (how found, doc id) credited
        self._credit_turn = -1  # the turn retrieval_correct was last credited
        self._judged = True  # nothing new to judge until a search or page

    async def arelease(self) -> None:
        await self.web.aclose()

    def task(self, options: dict[str, Any]) -> tuple[list[Message], dict[str, Any]]:
        index = self.task_index(len(self.questions))
        self.question = q = self.questions[index]
        self.seen, self._last_found, self._credited = set(), set(), set()
        self._credit_turn, self._judged = -1, True
        info = {
            "question_id": q.id,
            "hops": q.hops,
            "kind": q.kind,
            "answer": q.answer,
            "supporting": q.supporting,
        }
        return [Message(role="user", content=PROMPT.format(question=q.question))], info

    # ---- process rewards ------------------------------------------------------------------

    def _found(self, doc_ids: list[str | None], how: str) -> None:
        gold = self.question.supporting
        hits = [d for d in doc_ids if d in gold]
        fresh = {(how, d) for d in hits if d is not None} - self._credited
        credit = bool(fresh) and self._credit_turn != self.turn
        self.add_signal("retrieval_correct", float(credit))
        self._credited |= fresh
        if credit:
            self._credit_turn = self.turn
        new = {d for d in hits if d is not None and d not in self.seen}
        on_path = [
            d
            for d in new
            if self.question.kind != "bridge"
            or gold.index(d) == 0
            or gold[gold.index(d) - 1] in self.seen | new
        ]
        self.add_signal("retrieval_useful", len(on_path) / len(gold))
        self._last_found, self._judged = new, False
        self.seen |= new

    # ---- tools ----------------------------------------------------------------------------

    @tool
    async def search(self, query: str, k: int = 5) -> str:
        """Search the web.

        Args:
            query: What to look for.
            k: How many results to return (1-10).
        """
        if not query.strip():
            raise ToolError("the query is empty; write what you are looking for")
        k = max(1, min(k, self.max_k))
        results = await self.web.search(query.strip(), k)
        self._found([r.doc_id for r in results], "search")
        if not results:
            return f"No results for {query!r}. Try other words."
        return "\n".join(
            f"{i}. {r.title} ({r.url})\n   {r.snippet}" for i, r in enumerate(results, 1)
        )

    @tool
    async def open_page(self, url: str, page: int = 1) -> str:
        """Open a web page and read it, one part at a time.

        Args:
            url: The page's URL, as search or a link gave it.
            page: Which part to read (1 is the start).
        """
        doc = await self.web.fetch(url)
        self._found([self.web.doc_id(doc.url)], "open")
        words = doc.text.split()
        parts = max(1, -(-len(words) // self.page_words))
        if not 1 <= page <= parts:
            raise ToolError(f"page {page} does not exist; this page has parts 1-{parts}")
        body = " ".join(words[(page - 1) * self.page_words : page * self.page_words])
        links = "\n".join(f"- {label} ({href})" for label, href in doc.links[:20])
        more = (
            f"\n[part {page} of {parts}; open_page(url, page={page + 1}) reads on]"
            if page < parts
            else ""
        )
        cut = "\n[the page was cut at the size limit]" if doc.truncated else ""
        return f"{doc.title} ({doc.url})\n{body}{more}{cut}" + (
            f"\nLinks:\n{links}" if links else ""
        )

    @tool
    def judge(self, useful: bool, plan: str) -> str:
        """Judge whether the last results help answer the question, and plan the next step.

        Args:
            useful: True if the last search or page brought new, relevant evidence.
            plan: What you will do next.
        """
        if self._judged:
            return "Nothing new to judge: search or open a page, then judge what it brought."
        self._judged = True
        right = useful == bool(self._last_found)
        self.add_signal("judge_correct", (1.0 if useful else 0.0) if right else -1.0)
        return f"Noted. Next step: {plan.strip() or '(none given)'}"

    @tool
    async def answer(self, text: str) -> str:
        """Give the final answer; this ends the episode.

        Args:
            text: The answer, a short phrase.
        """
        golds = self.question.aliases or [self.question.answer]
        f1, em = best_f1(text, golds), best_em(text, golds)
        self.add_reward("answer_f1", f1)
        judged = {}
        if self.cfg.judge is not None:  # other episodes run while the judge thinks
            verdict = await judge_for(self.cfg.judge).score(
                self.question.question, text, self.question.answer
            )
            self.add_reward("judge", verdict.part)
            judged["judge"] = verdict.info()
        self.end(
            success=em == 1.0, f1=f1, em=em, prediction=text, gold=self.question.answer, **judged
        )
        return "Answer recorded."

    def on_reply(self, content: str) -> list[Message]:
        self.add_reward("format", -self.format_penalty)
        return [
            Message(role="user", content="Use the tools; give your final answer with answer(text).")
        ]
