"""Loaders of public QA formats, from small files in each format."""

import json

import pytest

from agentgym.data.loaders import load_passages, load_questions, load_sessions
from agentgym.errors import ConfigError

HOTPOT = [
    {
        "_id": "5a8b",
        "question": "Which city was the director of Film X born in?",
        "answer": "Springfield",
        "type": "bridge",
        "supporting_facts": [["Film X", 0], ["Jane Doe", 1], ["Jane Doe", 0]],
        "context": [
            ["Film X", ["Film X is a film.", " It was directed by Jane Doe."]],
            ["Jane Doe", ["Jane Doe is a director.", " She was born in Springfield."]],
            ["Other", ["Distractor text."]],
        ],
    }
]
MUSIQUE = {
    "id": "2hop_1",
    "question": "Who founded the company that made Y?",
    "answer": "Ann Lee",
    "answer_aliases": ["A. Lee"],
    "paragraphs": [
        {"idx": 0, "title": "Y", "paragraph_text": "Y was made by Acme.", "is_supporting": True},
        {
            "idx": 1,
            "title": "Acme",
            "paragraph_text": "Acme was founded by Ann Lee.",
            "is_supporting": True,
        },
        {"idx": 2, "title": "Z", "paragraph_text": "Unrelated.", "is_supporting": False},
    ],
}


def test_hotpotqa(tmp_path):
    path = tmp_path / "hotpot_dev_distractor_v1.json"
    path.write_text(json.dumps(HOTPOT))
    [q] = load_questions(path)
    assert (q.id, q.answer, q.supporting, q.hops, q.kind) == (
        "5a8b",
        "Springfield",
        ["Film X", "Jane Doe"],
        2,
        "bridge",
    )
    passages = load_passages(path)
    assert [p.title for p in passages] == ["Film X", "Jane Doe", "Other"]
    assert passages[1].text == "Jane Doe is a director. She was born in Springfield."


def test_musique_and_nq_jsonl(tmp_path):
    (tmp_path / "m.jsonl").write_text(json.dumps(MUSIQUE) + "\n")
    [q] = load_questions(tmp_path / "m.jsonl")
    assert q.aliases == ["Ann Lee", "A. Lee"] and q.supporting == ["Y", "Acme"]
    nq = [{"id": "t1", "question": "who wrote it", "golden_answers": ["Ann", "Ann Lee"]}]
    (tmp_path / "nq.jsonl").write_text("\n".join(json.dumps(r) for r in nq))
    [q] = load_questions(tmp_path / "nq.jsonl")
    assert q.answer == "Ann" and q.aliases == ["Ann", "Ann Lee"] and q.kind == "single"


def test_topiocqa_sessions_with_topic_switch(tmp_path):
    rows = [
        {
            "Conversation_no": 1,
            "Turn_no": t,
            "Question": f"q{t}",
            "Answer": f"a{t}",
            "Topic": topic,
            "Gold_passage": {"title": topic, "text": "..."},
        }
        for t, topic in [(2, "A"), (1, "A"), (3, "B")]
    ]
    (tmp_path / "topiocqa.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    [s] = load_sessions(tmp_path / "topiocqa.jsonl")
    assert [t.user for t in s.turns] == ["q1", "q2", "q3"]
    assert [t.intent for t in s.turns] == ["new", "follow_up", "switch"]
    assert s.turns[2].evidence == ["B"]


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_questions(tmp_path / "nope.json")
    (tmp_path / "x.jsonl").write_text('{"question": "q"}\n')
    with pytest.raises(ConfigError, match="no answer field"):
        load_questions(tmp_path / "x.jsonl")


@pytest.mark.parametrize("gold", ["", " ", "the", "."])
def test_rows_whose_gold_says_nothing_are_refused_or_dropped(tmp_path, gold):
    rows = [{"id": "ok", "question": "q1", "golden_answers": ["Paris", "."]},
            {"id": "bad", "question": "q2", "golden_answers": [gold]}]  # fmt: skip
    path = tmp_path / "nq.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(ConfigError, match=r"row 1 \(id 'bad'\).*normalise to nothing"):
        load_questions(path)
    [q] = load_questions(path, unscorable="drop")
    assert q.aliases == ["Paris"]  # its degenerate alias dropped too
    turns = [{"Conversation_no": 1, "Turn_no": 1, "Question": "q", "Answer": gold}]
    (tmp_path / "topiocqa.jsonl").write_text(json.dumps(turns[0]))
    with pytest.raises(ConfigError, match="normalise to nothing"):
        load_sessions(tmp_path / "topiocqa.jsonl")
    assert load_sessions(tmp_path / "topiocqa.jsonl", unscorable="drop") == []
