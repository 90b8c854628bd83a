"""The obvious cheats, env by env, win nothing (the policy is an adversary: it finds every
shortcut in a reward). swe's (rewritten tests, planted conftest, ignored or replanted by a
git hook, test blobs replaced or smudged, shadowed pytest, deleted tests, PASSED printed at
exit, a user-site .pth) are in tests/envs/test_swe.py; many calls in one turn (guess_number's
100 guesses) in tests/agentgym/test_env.py."""

import json
import re

import pytest

import agentgym
from agentgym.envs.deep_research.baselines import call
from agentgym.envs.gui.action_env import score
from agentgym.envs.gui.actions import ActionSample


@pytest.fixture
def deep_research():
    env = agentgym.make("deep_research", world_size=1000, tasks=60)
    yield env
    env.close()


def titles(text):
    return re.findall(r"^\d+\. (.*) \(\S+\)$", text, re.M)


def test_deep_research_listing_every_result_wins_nothing(deep_research):
    env = deep_research
    for seed in range(5):
        _, info = env.reset(seed=seed)
        obs, *_ = env.step(call("search", query=env.question.question, k=10))
        listing = ", ".join(titles(obs.messages[0].content) + [env.question.answer])
        _, reward, terminated, _, info = env.step(call("answer", text=listing))
        assert terminated and not info["success"] and reward < 0.25, (listing, reward)


def test_deep_research_one_letter_and_many_answers_in_one_turn(deep_research):
    env = deep_research
    env.reset(seed=0)
    _, reward, *_, info = env.step(call("answer", text="e"))
    assert reward == 0.0 and not info["success"]
    env.reset(seed=0)
    guesses = ["wrong one", env.question.answer, "another"]
    _, reward, terminated, _, info = env.step("".join(call("answer", text=g) for g in guesses))
    assert terminated and reward == 0.0 and info["prediction"] == "wrong one"


def test_deep_research_process_signals_cannot_be_farmed(deep_research):
    """Repeating a search that finds a supporting page, reopening it, and judging useless
    searches as useless, eight calls a turn for every turn: the process signals stay bounded
    by the supporting documents, as for a policy that did each thing once."""
    env = deep_research
    env.reset(seed=0)
    page = f"/wiki/{env.question.supporting[0]}"
    turns = [
        call("search", query=env.question.question, k=10) * 4 + call("open_page", url=page) * 4,
        (call("search", query="zzqxj") + call("judge", useful=False, plan="again")) * 4,
        (call("open_page", url=page) + call("judge", useful=True, plan="more")) * 4,
    ] * 3
    signals: dict[str, float] = {}
    for turn in turns:
        *_, info = env.step(turn)
        for name, value in info.get("signals", {}).items():
            signals[name] = signals.get(name, 0.0) + value
    gold = len(env.question.supporting)
    assert signals["retrieval_correct"] <= 2  # once found by search, once opened
    assert signals["retrieval_useful"] <= 1.0
    assert signals["judge_correct"] <= min(gold, 1)  # one page brought new evidence, once


def test_retrieval_qa_answering_with_the_evidence_wins_little():
    env = agentgym.make("retrieval_qa", world_size=1000, tasks=50)
    try:
        _, info = env.reset(seed=0)
        first = info["turns"][0]
        obs, *_ = env.step(call("retrieve", query=" ".join(first["evidence_titles"])))
        dump = obs.messages[0].content  # every retrieved passage, gold answer inside
        assert first["answer"].lower() in dump.lower()
        _, _, _, _, info = env.step(dump)
        assert info["f1"] < 0.2 and info["intent_score"] <= 0.5
    finally:
        env.close()


@pytest.mark.parametrize("hedge", ["letter", "every candidate", "gold and a decoy"])
def test_keychain_hedged_and_degenerate_answers_score_zero(hedge):
    env = agentgym.make("keychain", context_tokens=1024, world_size=2000)
    try:
        _, info = env.reset(seed=1)
        gold, decoys = info["answer"], info["decoy_answers"]
        text = {
            "letter": "e",
            "every candidate": " ".join([*decoys, gold]),
            "gold and a decoy": f"{gold} or {decoys[0]}",
        }[hedge]
        _, reward, terminated, _, info = env.step(f"<answer>{text}</answer>")
        assert terminated and reward == 0.0 and not info["success"]
        env.reset(seed=1)  # the honest answer, phrased, still scores
        _, reward, *_ = env.step(f"<answer>It is {gold}.</answer>")
        assert reward == 1.0
    finally:
        env.close()


@pytest.mark.parametrize(
    "reply",
    [
        '<action>{"action_type": "click", "x": 5, "y": 5}</action>'
        '<action>{"action_type": "click", "x": 50, "y": 50}</action>',  # two shots
        '<action>{"action_type": "click", "x": [5, 50], "y": [5, 50]}</action>',  # a list
        '<action>{"action_type": "click", "x": "nan", "y": "nan"}</action>',
        '<action>{"action_type": "click", "x": 1e999, "y": 1e999}</action>',
    ],
)
def test_gui_action_several_or_unbounded_coordinates_hit_nothing(reply):
    gold = ActionSample("Click OK", "data:,", "click", [40.0, 40.0, 60.0, 60.0])
    assert score(reply, gold)["coordinate"] == 0.0
    honest = '<action>{"action_type": "click", "x": 50, "y": 50}</action>'
    assert score(honest, gold) == {"format": 1.0, "action_type": 1.0, "coordinate": 1.0}
    assert json.loads(honest[8:-9])["x"] == 50
