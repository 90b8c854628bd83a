"""keychain: synthesis invariants with real tokenizers, baselines, tools mode, NIAH, loader."""

import json
import re

import numpy as np
import pytest

import agentgym
from agentgym.data.keychain import Pool, resolve, synthesize
from agentgym.data.world import World, make_questions
from agentgym.envs.keychain.config import counter
from tests.conftest import eval_run
from tests.data.test_loaders import HOTPOT

WORLD = World(20_000, seed=0)
QUESTIONS = make_questions(WORLD, 40, seed=0)


@pytest.fixture(scope="module", params=["minilm", "tiny"])
def count(request, tiny_model):
    return counter(None if request.param == "minilm" else str(tiny_model))


@pytest.fixture(scope="module")
def pool(count):
    return Pool([WORLD.document(i).text for i in range(WORLD.size)], count)


def make(pool, target, seed, **kw):
    q, decoys = QUESTIONS[seed], QUESTIONS[seed + 1 : seed + 4]
    docs = [WORLD.document(int(d[1:])).text for d in q.supporting]
    return synthesize(
        q.question,
        docs,
        pool,
        [d.question for d in decoys],
        target,
        np.random.default_rng(seed),
        **kw,
    )


@pytest.mark.parametrize("target", [4096, 16384, 131072])
def test_context_hits_its_token_target_within_2_percent(pool, count, target):
    kc = make(pool, target, seed=1)
    assert abs(count(kc.context) - target) <= 0.02 * target


def test_chain_resolves_uniquely_and_decoys_never_reach_the_question(pool):
    for seed in range(10):
        kc = make(pool, 4096, seed, chain_length=2 + seed % 3)
        links = dict(re.findall(r'The value of key (\S+) is "(.*?)"\.', kc.context))
        assert resolve(links, kc.start)[-1] == kc.question
        assert resolve(links, kc.start)[:-1] == kc.chain
        for key in links:
            assert kc.context.count(f"The value of key {key} is") == 1  # one value per key
        for start, q in zip(kc.decoy_starts, kc.decoy_questions, strict=True):
            path = resolve(links, start)
            assert path[-1] == q != kc.question and not set(path) & set(kc.chain)


def test_same_seed_same_context_and_depth_is_honoured(pool):
    assert make(pool, 4096, 3) == make(pool, 4096, 3)
    q = QUESTIONS[5]
    first = WORLD.document(int(q.supporting[0][1:])).text
    early, late = (make(pool, 8192, 5, evidence_depth=d) for d in (0.0, 1.0))
    assert early.context.index(first) < 0.1 * len(early.context)
    assert late.context.index(first) > 0.8 * len(late.context)


def eval_summary(tmp_path, *overrides):
    return eval_run(tmp_path / "run", "env=keychain", "policy=scripted", *overrides)[0]


@pytest.mark.parametrize("mode", ["single", "tools"])
def test_oracle_scores_one_decoy_follower_zero(tmp_path, mode):
    args = ["episodes=12", f"env.mode={mode}", "env.world_size=5000", "env.tasks=40"]
    assert eval_summary(tmp_path / "o", *args, "policy.script=oracle")["mean_reward"] == 1.0
    assert eval_summary(tmp_path / "d", *args, "policy.script=decoy")["mean_reward"] == 0.0


def test_niah_preset_reports_a_heat_map(tmp_path):
    summary = eval_summary(
        tmp_path, "env.preset=niah", "env.niah_lengths=[1024,2048]", "episodes=10"
    )
    assert summary["grid"]["axes"] == ["context_tokens", "evidence_depth"]
    assert len(summary["grid"]["cells"]) == 10
    assert '<svg class="heatmap"' in (tmp_path / "run" / "report.html").read_text()


def test_info_says_whether_the_true_question_was_named():
    env = agentgym.make("keychain", world_size=5000, tasks=20, context_tokens=1024)
    _, info = env.reset(seed=0)
    *_, end = env.step(f"The question is: {env.q.question} <answer>{info['answer']}</answer>")
    assert end["named_question"] and not end["followed_decoy"] and end["chain_length"] == 3
    env.reset(seed=0)
    *_, end = env.step(f"{env.decoys[0].question} <answer>x</answer>")
    assert end["followed_decoy"] and not end["success"]
    env.reset(seed=0)
    _, reward, *_, end = env.step("no tags at all")
    assert reward == -env.format_penalty and end["format_error"] is True  # flag = penalty


def test_from_a_hotpotqa_file(tmp_path):
    records = [dict(HOTPOT[0], _id=f"q{i}", answer=f"City{i}") for i in range(6)]
    for i, r in enumerate(records):
        r["question"] = f"Question number {i}?"
    path = tmp_path / "hotpot.json"
    path.write_text(json.dumps(records))
    env = agentgym.make("keychain", dataset=str(path), tasks=6, context_tokens=512, decoys=2)
    _, info = env.reset(seed=1)
    assert info["answer"] == "City1" and "Jane Doe is a director." in env.kc.context
    assert resolve(env.kc.links, env.kc.start)[-1] == "Question number 1?"
