"""Loaders for public QA formats, from files a user has downloaded (nothing is fetched).

* ``load_questions``: HotpotQA and 2WikiMultihopQA (a JSON list with ``_id``, ``question``,
  ``answer``, ``supporting_facts``, ``context``), MuSiQue (JSONL with ``paragraphs`` and
  ``answer_aliases``), NQ-style JSONL (``question`` with ``golden_answers`` as Search-R1 and
  FlashRAG write it, or ``answer``/``answers``).
* ``load_passages``: the context paragraphs of those files, for a corpus or distractors;
  ``load_corpus``: those, or a corpus JSONL, for ``agentgym index``.
* ``load_sessions``: conversational QA (TopiOCQA, QReCC: one record per turn with
  ``Conversation_no``, ``Turn_no``, ``Question``, ``Answer``).

Supporting documents are named by title (the public files have no other stable id).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from agentgym.data.world.questions import Question, Session, SessionTurn
from agentgym.errors import ConfigError
from agentgym.retrieval import Passage, read_jsonl_corpus
from agentgym.rewards.qa import normalize

log = logging.getLogger(__name__)


def _records(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        raise ConfigError("dataset", f"no such file {str(path)!r}", "give the path of a local file")
    text = path.read_text(encoding="utf-8").strip()
    if text.startswith("["):
        data = json.loads(text)
        return list(data.get("data", data) if isinstance(data, dict) else data)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _answers(r: dict[str, Any]) -> list[str]:
    for key in ("golden_answers", "answers", "answer"):
        if key in r:
            value = r[key]
            values = value if isinstance(value, list) else [value]
            return [str(v) for v in values] + [str(a) for a in r.get("answer_aliases", [])]
    raise ConfigError(
        "dataset",
        f"a record has no answer field: {sorted(r)}",
        "use HotpotQA, 2Wiki, MuSiQue or NQ-style JSONL (question + golden_answers)",
    )


Unscorable = Literal["error", "drop"]
"""What a loader does with a row whose gold answers all normalise to nothing ("", "the", "."),
which would pay an empty reply: ``error`` names the row; ``drop`` skips it and logs a count.
Answers or aliases of a row that normalise to nothing are always dropped."""


def _scorable(records: list[dict[str, Any]], golds: Callable[[dict[str, Any]], list[str]],
              unscorable: Unscorable) -> list[tuple[int, dict[str, Any], list[str]]]:  # fmt: skip
    """(index, row, its answers that say something) of every row that has one."""
    rows, dropped = [], 0
    for n, r in enumerate(records):
        answers = golds(r)
        kept = [a for a in answers if normalize(a)]
        if kept:
            rows.append((n, r, kept))
        elif unscorable == "drop":
            dropped += 1
        else:
            row = r.get("_id", r.get("id", r.get("Conversation_no", n)))
            raise ConfigError(
                "dataset",
                f"row {n} (id {row!r}): its gold answers {answers!r} normalise to nothing, "
                "so an empty reply would score as right",
                "fix or remove the row, or env.unscorable_rows=drop to skip such rows",
            )
    if dropped:
        log.warning("dropped %d of %d rows whose gold answers say nothing", dropped, len(records))
    return rows


def _question(n: int, r: dict[str, Any], answers: list[str]) -> Question:
    if "supporting_facts" in r:  # HotpotQA, 2WikiMultihopQA
        titles = list(dict.fromkeys(str(f[0]) for f in r["supporting_facts"]))
        kind = str(r.get("type", "bridge"))
    elif "paragraphs" in r:  # MuSiQue
        titles = [str(p["title"]) for p in r["paragraphs"] if p.get("is_supporting")]
        kind = "bridge"
    else:  # NQ-style
        titles, kind = [], "single"
    qid = str(r.get("_id", r.get("id", n)))
    return Question(qid, str(r["question"]), answers[0], answers, titles, max(1, len(titles)), kind)


def load_questions(path: str | Path, unscorable: Unscorable = "error") -> list[Question]:
    """Questions of a HotpotQA, 2WikiMultihopQA, MuSiQue or NQ-style file."""
    return [_question(*row) for row in _scorable(_records(path), _answers, unscorable)]


def _paragraphs(r: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if "context" in r:
        for title, sentences in r["context"]:
            yield str(title), " ".join(str(s).strip() for s in sentences)
    for p in r.get("paragraphs", []):
        yield str(p["title"]), str(p["paragraph_text"])


def load_passages(path: str | Path) -> list[Passage]:
    """Every distinct context paragraph of a HotpotQA/2Wiki/MuSiQue file (id = title)."""
    seen: dict[str, Passage] = {}
    for r in _records(path):
        for title, text in _paragraphs(r):
            seen.setdefault(title, Passage(title, title, text))
    return list(seen.values())


def load_corpus(path: str | Path) -> list[Passage]:
    """Passages to index: the paragraphs of a HotpotQA/2Wiki/MuSiQue file, or the records of
    a corpus JSONL (``{"id", "title", "text"}`` or Search-R1's ``{"id", "contents"}``)."""
    records = _records(path)
    if any("context" in r or "paragraphs" in r for r in records[:100]):
        passages = load_passages(path)
    else:
        passages = list(read_jsonl_corpus(path))
    if not passages:
        raise ConfigError("corpus", f"no passages in {str(path)!r}", "give a non-empty corpus file")
    return passages


def load_sessions(path: str | Path, unscorable: Unscorable = "error") -> list[Session]:
    """Conversations of a TopiOCQA or QReCC file, turns in order. A turn's intent is ``new``
    for the first, ``switch`` when TopiOCQA's ``Topic`` changes, ``follow_up`` otherwise."""
    by_conv: dict[str, list[dict[str, Any]]] = {}
    for _, r, _ in _scorable(_records(path), lambda r: [str(r["Answer"])], unscorable):
        by_conv.setdefault(str(r["Conversation_no"]), []).append(r)
    sessions = []
    for conv, records in by_conv.items():
        records.sort(key=lambda r: int(r["Turn_no"]))
        turns, topic = [], None
        for i, r in enumerate(records):
            answer = str(r["Answer"])
            intent = (
                "new" if i == 0 else "switch" if r.get("Topic", topic) != topic else "follow_up"
            )
            topic = r.get("Topic")
            gold = r.get("Gold_passage") or {}
            evidence = [str(gold["title"])] if gold.get("title") else [str(r.get("Answer_URL", ""))]
            turns.append(SessionTurn(str(r["Question"]), intent, answer, [answer], evidence))
        sessions.append(Session(f"conv{conv}", turns))
    return sessions
