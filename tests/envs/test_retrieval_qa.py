"""retrieval_qa: conversational QA with the intent-aware turn reward."""

import pytest

import agentgym
from agentgym.envs.retrieval_qa.baselines import call
from tests.conftest import check_token_trajectory, eval_run


def test_oracle_scores_one_and_naive_clearly_less(tmp_path):
    scores = {}
    for script in ("oracle", "naive"):
        summary, _ = run_eval(
            tmp_path / script, "policy=scripted", f"policy.script={script}", "episodes=30"
        )
        scores[script] = summary["mean_reward"]
    assert scores["oracle"] == pytest.approx(1.0) and scores["naive"] < 0.3


def test_intent_reward_by_hand():
    env = agentgym.make("retrieval_qa", world_size=1000, tasks=50)
    # find a session whose second turn asks a follow-up with a different answer
    for seed in range(50):
        _, info = env.reset(seed=seed)
        turns = info["turns"]
        if len(turns) > 2 and turns[1]["answer"] != turns[0]["answer"]:
            break
    n = len(turns)
    _, reward, *_, info = env.step(call("retrieve", query=" ".join(turns[0]["evidence_titles"])))
    assert reward == 0.0 and info["intent"] == turns[0]["intent"]
    _, reward, *_, info = env.step(turns[0]["answer"])
    assert info["reward_parts"] == {"answer_f1": 0.5 / n, "intent": 0.5 / n}
    # answering the previous turn's question again: no F1, no retrieval, a stale penalty
    obs, reward, *_, info = env.step(turns[0]["answer"])
    assert info["intent_score"] == -0.5 and info["reward_parts"]["intent"] == pytest.approx(
        -0.25 / n
    )
    assert info["intent"] == turns[1]["intent"] and obs.messages[0].role == "user"


def run_eval(tmp_path, *overrides):
    args = ["env=retrieval_qa", "env.world_size=1000", "env.tasks=30"]
    return eval_run(tmp_path / "run", *args, *overrides)


def test_through_a_real_retrieval_server(tmp_path, retrieval_server):
    summary, _ = run_eval(
        tmp_path, "policy=scripted", "episodes=6", f"env.retrieval_url={retrieval_server}"
    )
    assert summary["mean_reward"] == pytest.approx(1.0)


@pytest.mark.slow
def test_tiny_model_runs_with_valid_trajectories(tmp_path, tiny_model, hf_model):
    _, trajs = run_eval(
        tmp_path,
        "policy=hf",
        f"policy.model={tiny_model}",
        "policy.max_new_tokens=32",
        "episodes=4",
        "group_size=2",
        "rollout.max_turns=3",
    )
    assert len(trajs) == 4
    for t in trajs:
        check_token_trajectory(t, hf_model, tol=1e-3)
        assert all(turn.info.get("intent") for turn in t.turns)
