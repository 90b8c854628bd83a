"""The fictional world: deterministic, consistent, answerable, no leakage."""

import hashlib

import pytest

from agentgym.data.world import World, make_questions, make_sessions, normalize


def digest(world: World, n: int = 500) -> str:
    h = hashlib.sha256()
    for i in range(n):
        d = world.document(i)
        h.update(f"{d.id}\n{d.title}\n{d.text}\n{d.html}\n".encode())
    return h.hexdigest()


def test_same_seed_same_world_byte_for_byte():
    assert digest(World(3000, seed=7)) == digest(World(3000, seed=7))
    assert digest(World(3000, seed=7)) != digest(World(3000, seed=8))
    q1 = make_questions(World(3000, seed=7), 50, seed=1)
    q2 = make_questions(World(3000, seed=7), 50, seed=1)
    assert q1 == q2
    assert make_sessions(World(3000, seed=7), 5) == make_sessions(World(3000, seed=7), 5)


def test_names_are_unique_and_pages_link_to_real_entities():
    world = World(20_000, seed=2)
    names = [world.name(i) for i in range(world.size)]
    assert len(set(names)) == len(names)
    doc = world.document(int(world.ids["work"][0]))
    creator = int(world.person[int(world.ids["work"][0])])
    assert f'href="/wiki/d{creator}"' in doc.html and world.name(creator) in doc.text


@pytest.mark.parametrize("seed", [0, 1])
def test_every_question_is_answerable_from_its_supporting_documents(seed):
    world = World(5000, seed=seed)
    questions = make_questions(world, 300, seed=seed)
    assert {q.kind for q in questions} == {"bridge", "comparison", "intersection"}
    assert {q.hops for q in questions if q.kind == "bridge"} == {2, 3, 4}
    for q in questions:
        docs = [world.document(int(d[1:])).text for d in q.supporting]
        assert normalize(q.answer) not in normalize(q.question), q  # no leakage
        assert any(normalize(q.answer) in normalize(t) for t in docs), q
        if q.kind == "bridge":  # each hop's entity is named on the page before it
            for name, page in zip(q.chain[1:], docs, strict=False):
                assert name in page, (q.question, name)
        if q.kind == "comparison":
            years = [int(world.year[int(d[1:])]) for d in q.supporting[1::2]]
            assert years[0] != years[1]
            assert q.answer == q.chain[years.index(min(years))]


def test_intersection_answers_are_unique():
    world = World(5000, seed=4)
    for q in make_questions(world, 40, seed=2, kinds=("intersection",)):
        person = int(q.supporting[0][1:])
        matches = [
            p
            for p in world.ids["person"]
            if world.occupation(int(p)) == world.occupation(person)
            and world.city[p] == world.city[person]
            and world.org[p] == world.org[person]
        ]
        assert matches == [person]


def test_sessions_shift_intent_with_gold_per_turn():
    world = World(3000, seed=5)
    sessions = make_sessions(world, 60, seed=3)
    intents = {t.intent for s in sessions for t in s.turns}
    assert intents == {"new", "follow_up", "clarify", "switch"}
    for s in sessions:
        assert 3 <= len(s.turns) <= 8 and s.turns[0].intent == "new"
        for t in s.turns:
            evidence = " ".join(world.document(int(d[1:])).text for d in t.evidence)
            assert normalize(t.answer) in normalize(evidence), (t.user, t.answer)


def test_scales_to_a_million_documents():
    world = World(1_000_000, seed=0)
    assert world.size == 1_000_000
    doc = world.document(999_999)
    assert doc.id == "d999999" and doc.text
    assert len(make_questions(world, 20, seed=0, kinds=("bridge", "comparison"))) == 20
