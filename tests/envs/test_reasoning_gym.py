"""reasoning-gym's datasets as an env, with the real package: its own scorer is the reward, the
oracle scores 1, nothing scores nothing, and bad names or options fail before any episode."""

from __future__ import annotations

import asyncio
import json

import pytest

import agentgym
from agentgym.checks import check_rewards, verdict
from agentgym.cli import main
from agentgym.envs.reasoning_gym import ReasoningGymEnv
from agentgym.errors import ConfigError

pytest.importorskip("reasoning_gym")


def play(env, action: str, seed: int, split: str = "train"):
    obs, info = env.reset(seed=seed, options={"split": split})
    *_, step_info = env.step(action)
    return info, step_info


def test_the_datasets_own_scorer_is_the_reward_whichever_way_the_model_answers():
    import reasoning_gym

    env = agentgym.make("reasoning_gym", dataset="basic_arithmetic", tasks=20)
    obs, info = env.reset(seed=3, options={"split": "train"})
    assert env.entry["question"] in obs.messages[0].content
    entry = reasoning_gym.create_dataset("basic_arithmetic", seed=0, size=20)[env.task_index(20)]
    assert entry == env.entry  # the same item reasoning-gym generates for that seed
    _, done = play(env, ReasoningGymEnv.oracle([], info, None), seed=3)
    assert done["success"] and done["reward_parts"] == {"correct": 1.0}
    right = f"Let me compute. <answer>{info['answer']}</answer>"
    assert play(env, right, seed=3)[1]["success"]  # a final message, tags read
    for wrong in ("", "<answer></answer>", "I do not know", "<answer>12345678</answer>"):
        _, done = play(env, wrong, seed=3)
        assert not done["success"] and done["reward_parts"]["correct"] == 0.0, wrong


def test_seeded_with_disjoint_held_out_items():
    env = agentgym.make("reasoning_gym", dataset="chain_sum", tasks=40)
    train = {json.dumps(play(env, "x", seed=s)[0]) + env.entry["question"] for s in range(60)}
    held = {
        json.dumps(play(env, "x", seed=s, split="eval")[0]) + env.entry["question"]
        for s in range(60)
    }
    assert len(held) == 4 and len(train) == 36 and not train & held
    again = agentgym.make("reasoning_gym", dataset="chain_sum", tasks=40)
    assert play(again, "x", seed=7)[0] == play(env, "x", seed=7)[0]


@pytest.mark.parametrize(
    ("options", "key", "said"),
    [
        ({"dataset": "chain_sums"}, "env.dataset", "did you mean chain_sum"),
        ({"dataset": "chain_sum", "config": {"bogus": 1}}, "env.config", "bogus"),
        (
            {"dataset": "chain_sum", "config": {"min_terms": 5, "max_terms": 2}},
            "env.config",
            "max_terms",
        ),
    ],
)
def test_a_bad_dataset_or_config_names_the_key_before_any_episode(options, key, said):
    from agentgym.config import validate
    from agentgym.envs.reasoning_gym import ReasoningGymConfig

    with pytest.raises(ConfigError) as err:
        validate(ReasoningGymConfig, options, prefix="env")
    assert f"'{key}'" in str(err.value) and said in str(err.value), str(err.value)


def test_the_reward_gate_passes_the_oracle_and_refuses_nothing(capsys):
    rows = asyncio.run(check_rewards("reasoning_gym", {"dataset": "chain_sum"}, tasks=4))
    verdict("reasoning_gym", rows)
    oracle = next(r for r in rows if r.baseline == "oracle")
    assert oracle.success_rate == 1.0 and all(r.mean_reward <= 0 for r in rows if r != oracle)
    assert main(["check", "env=reasoning_gym", "env.dataset=chain_sum"]) == 0
    assert "oracle" in capsys.readouterr().out


def test_eval_with_the_scripted_oracle_from_the_command_line(tmp_path):
    code = main(
        [
            "eval",
            "env=reasoning_gym",
            "env.dataset=basic_arithmetic",
            "policy=scripted",
            "episodes=4",
            f"out={tmp_path}",
        ]
    )
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["success_rate"] == 1.0


@pytest.mark.slow
def test_a_short_train_on_the_captured_tokens(tiny_model, tmp_path):
    """The env trains as the built-in ones do: a cold start on the oracle, then a GRPO step
    (the tiny random model; learning itself is the ledger's to show)."""
    code = main(
        [
            "train",
            "env=reasoning_gym",
            "env.dataset=chain_sum",
            f"policy.model={tiny_model}",
            "policy=hf",
            "device=cpu",
            "policy.max_new_tokens=8",
            "cold_start.episodes=4",
            "cold_start.baseline=oracle",
            "trainer.steps=1",
            "trainer.tasks_per_step=2",
            "trainer.group_size=2",
            f"out={tmp_path}",
        ]
    )
    assert code == 0
    steps = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1]["step"] == 0 and steps[-1]["trained_tokens"] > 0
