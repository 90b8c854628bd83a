"""Questions about the fictional world, with gold answers, aliases and supporting documents.

* Multi-hop questions (``make_questions``): bridge chains of 2-4 hops (work -> creator ->
  employer -> headquarters -> country), comparisons (who was born first, two 2-hop chains)
  and intersections (the one person with an occupation, a birthplace and an employer). The
  answer never appears in the question, and every hop can be read off its supporting document
  (``tests/data`` checks both for every question).
* Conversational sessions (``make_sessions``, ChatR1-style): 3-8 user turns whose intent
  shifts (``new``, ``follow_up``, ``clarify``, ``switch``), each with its gold answer and
  evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from agentgym.data.world.generator import World
from agentgym.rewards.qa import normalize


@dataclass(frozen=True)
class Question:
    """One multi-hop question."""

    id: str
    question: str
    answer: str
    aliases: list[str]
    supporting: list[str]
    """Document ids, in the order a reader follows them."""
    hops: int
    kind: str
    chain: list[str] = field(default_factory=list)
    """The entity named at each hop (the bridge entities, then the answer)."""


def _doc(i: int) -> str:
    return f"d{i}"


def _bridge(w: World, rng: np.random.Generator, hops: int) -> Question | None:
    work = int(rng.choice(w.ids["work"]))
    person = int(w.person[work])
    org, hq = int(w.org[person]), int(w.city[int(w.org[person])])
    chain = [w.name(work), w.name(person)]
    of = f"the creator of {w.name(work)}"
    if hops == 2:
        if rng.random() < 0.5:
            q, a, al = f"In which city was {of} born?", w.name(int(w.city[person])), None
        else:
            q, a, al = f"In what year was {of} born?", str(int(w.year[person])), None
        return Question("", q, a, al or [a], [_doc(work), _doc(person)], 2, "bridge", chain)
    chain.append(w.name(org))
    employer = f"the organisation that employs {of}"
    if hops == 3:
        q, a = f"In which city are the headquarters of {employer}?", w.name(hq)
        return Question("", q, a, [a], [_doc(work), _doc(person), _doc(org)], 3, "bridge", chain)
    chain.append(w.name(hq))
    a = w.country_of(hq)
    q = f"In which country are the headquarters of {employer}?"
    sup = [_doc(work), _doc(person), _doc(org), _doc(hq)]
    return Question("", q, a, [a, f"Republic of {a}"], sup, 4, "bridge", chain)


def _comparison(w: World, rng: np.random.Generator) -> Question | None:
    w1, w2 = (int(x) for x in rng.choice(w.ids["work"], size=2, replace=False))
    p1, p2 = int(w.person[w1]), int(w.person[w2])
    if p1 == p2 or w.year[p1] == w.year[p2]:
        return None
    first = p1 if w.year[p1] < w.year[p2] else p2
    q = f"Who was born first: the creator of {w.name(w1)} or the creator of {w.name(w2)}?"
    sup = [_doc(w1), _doc(p1), _doc(w2), _doc(p2)]
    return Question(
        "", q, w.name(first), w.aliases(first), sup, 2, "comparison", [w.name(p1), w.name(p2)]
    )


def _intersection(w: World, rng: np.random.Generator, unique: set[int]) -> Question | None:
    person = int(rng.choice(w.ids["person"]))
    if person not in unique:
        return None
    q = (
        f"Which {w.occupation(person)} born in {w.name(int(w.city[person]))} works for "
        f"{w.name(int(w.org[person]))}?"
    )
    return Question(
        "",
        q,
        w.name(person),
        w.aliases(person),
        [_doc(person)],
        2,
        "intersection",
        [w.name(person)],
    )


def _unique_profiles(w: World) -> set[int]:
    """Persons no one else shares (occupation, birthplace, employer) with."""
    p = w.ids["person"]
    key = (w.city[p] * w.size + w.org[p]) * 16 + w.category[p] % 12
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    return {int(x) for x in p[counts[inverse] == 1]}


def make_questions(
    world: World,
    n: int,
    seed: int = 0,
    hops: tuple[int, ...] = (2, 3, 4),
    kinds: tuple[str, ...] = ("bridge", "comparison", "intersection"),
) -> list[Question]:
    """``n`` distinct questions, drawn with ``seed``; ``hops`` sets the bridge difficulty."""
    rng = np.random.default_rng([world.seed, seed])
    unique = _unique_profiles(world) if "intersection" in kinds else set()
    out: list[Question] = []
    seen: set[str] = set()
    for _ in range(n * 50):
        if len(out) == n:
            break
        kind = kinds[int(rng.integers(len(kinds)))]
        if kind == "bridge":
            q = _bridge(world, rng, int(rng.choice(hops)))
        elif kind == "comparison":
            q = _comparison(world, rng)
        else:
            q = _intersection(world, rng, unique)
        if q is None or q.question in seen:
            continue
        if any(normalize(a) in normalize(q.question) for a in q.aliases):
            continue  # the answer would leak into the question
        seen.add(q.question)
        out.append(
            Question(
                f"q{seed}-{len(out)}",
                q.question,
                q.answer,
                q.aliases,
                q.supporting,
                q.hops,
                q.kind,
                q.chain,
            )
        )
    if len(out) < n:
        raise ValueError(f"could only make {len(out)} of {n} questions from this world")
    return out


@dataclass(frozen=True)
class SessionTurn:
    """One user turn of a conversation, with its gold intent, answer and evidence."""

    user: str
    intent: str
    answer: str
    aliases: list[str]
    evidence: list[str]


@dataclass(frozen=True)
class Session:
    id: str
    turns: list[SessionTurn]


_ASK = {
    "year": "When were they born?",
    "city": "Where were they born?",
    "employer": "Who do they work for?",
    "profession": "What is their profession?",
}
_CLARIFY = {"year": "city", "city": "year", "employer": "profession", "profession": "employer"}


def _person_fact(w: World, p: int, attr: str) -> tuple[str, list[str]]:
    if attr == "year":
        return str(int(w.year[p])), [str(int(w.year[p]))]
    if attr == "city":
        return w.name(int(w.city[p])), [w.name(int(w.city[p]))]
    if attr == "employer":
        return w.name(int(w.org[p])), [w.name(int(w.org[p]))]
    return w.occupation(p), [w.occupation(p)]


def _opening(w: World, rng: np.random.Generator, intent: str) -> tuple[SessionTurn, int]:
    """A turn that brings a new person into focus: who created a work / founded an org."""
    if rng.random() < 0.5:
        work = int(rng.choice(w.ids["work"]))
        p = int(w.person[work])
        text, ev = f"Who created {w.name(work)}?", [_doc(work)]
    else:
        org = int(rng.choice(w.ids["organisation"]))
        p = int(w.person[org])
        text, ev = f"Who founded {w.name(org)}?", [_doc(org)]
    if intent == "switch":
        text = f"Something else now. {text}"
    return SessionTurn(text, intent, w.name(p), w.aliases(p), ev), p


def make_sessions(
    world: World, n: int, seed: int = 0, lengths: tuple[int, int] = (3, 8)
) -> list[Session]:
    """``n`` conversations of ``lengths[0]``-``lengths[1]`` user turns about people of the
    world (the default draws exactly as before the range was a setting)."""
    rng = np.random.default_rng([world.seed, seed, 1])
    sessions = []
    for s in range(n):
        length = int(rng.integers(lengths[0], lengths[1] + 1))
        turn, person = _opening(world, rng, "new")
        turns, asked = [turn], ""
        done: set[str] = set()
        while len(turns) < length:
            roll = rng.random()
            fresh = [a for a in _ASK if a not in done]
            if asked and _CLARIFY[asked] not in done and roll < 0.25:
                attr, intent = _CLARIFY[asked], "clarify"
                text = f"Sorry, I meant the {attr}, not the {asked}."
            elif fresh and (roll < 0.8 or len(turns) == length - 1):
                attr = str(rng.choice(fresh))
                intent, text = "follow_up", _ASK[attr]
            else:
                turn, person = _opening(world, rng, "switch")
                turns.append(turn)
                asked = ""
                done.clear()
                continue
            answer, aliases = _person_fact(world, person, attr)
            turns.append(SessionTurn(text, intent, answer, aliases, [_doc(person)]))
            asked = attr
            done.add(attr)
        sessions.append(Session(f"s{seed}-{s}", turns))
    return sessions
