"""Supervised fine-tuning on stored trajectories: the data it takes, and that it teaches."""

import asyncio
import json
from statistics import fmean

import pytest

import agentgym
from agentgym.cli import main
from agentgym.errors import ConfigError
from agentgym.policies.base import SamplingConfig
from agentgym.policies.hf import HFPolicy
from agentgym.policies.scripted import ScriptedPolicy, ScriptedTokenPolicy
from agentgym.rollout import RolloutConfig, TrajectoryWriter, rollout
from agentgym.trainers.sft import load_sequences


def _digits(messages, info, rng):
    return str(int(rng.integers(100, 1000)))


def _write(policy, path, tasks, env_id="digits"):
    async def go():
        with TrajectoryWriter(path) as writer:
            return await rollout(
                lambda: agentgym.make(env_id), policy, tasks, 1, RolloutConfig(), writer
            )

    return asyncio.run(go())


def test_scripted_token_policy_trains_only_the_scripts_tokens(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    script = [
        '<tool_call>{"name": "guess", "arguments": {"number": 50}}</tool_call>',
        '<tool_call>{"name": "guess", "arguments": {"number": 25}}</tool_call>',
    ]
    [traj] = _write(
        ScriptedTokenPolicy(script, tok), tmp_path / "t.jsonl", [3], env_id="guess_number"
    )
    # the loss covers exactly the script's text and each turn's end token
    trained = [i for i, m in zip(traj.token_ids, traj.loss_mask, strict=True) if m]
    expected = []
    for turn in traj.turns:
        expected += tok.encode(turn.action.content, add_special_tokens=False)
        expected.append(tok.convert_tokens_to_ids("<|im_end|>"))
    assert trained == expected


def test_sft_data_errors_name_the_fix(tiny_model, tmp_path):
    _write(ScriptedPolicy(_digits), tmp_path / "text.jsonl", [0, 1])
    with pytest.raises(ConfigError, match="token ids"):
        load_sequences([str(tmp_path / "text.jsonl")])
    with pytest.raises(ConfigError, match="no trajectories"):
        load_sequences([str(tmp_path / "missing.jsonl")])
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    _write(ScriptedTokenPolicy(["12", "ab"], tok), tmp_path / "ids.jsonl", [0, 1])
    assert len(load_sequences([str(tmp_path / "ids.jsonl")])) == 2
    # rejection sampling: only trajectories whose reward reaches the threshold
    assert len(load_sequences([str(tmp_path / "ids.jsonl")], min_reward=0.5)) == 2
    with pytest.raises(ConfigError, match="min_reward"):
        load_sequences([str(tmp_path / "ids.jsonl")], min_reward=2.0)


def _held_out_reward(model_dir):
    policy = HFPolicy.load(str(model_dir), SamplingConfig(temperature=0.0, max_new_tokens=8))
    settings = RolloutConfig(concurrency=16, split="eval")
    trajs = asyncio.run(
        rollout(
            lambda: agentgym.make("digits"), policy, list(range(10**9, 10**9 + 16)), 1, settings
        )
    )
    return fmean(t.reward for t in trajs)


@pytest.mark.slow
def test_sft_on_oracle_trajectories_teaches_the_task(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    _write(ScriptedTokenPolicy(_digits, tok), tmp_path / "oracle.jsonl", list(range(64)))
    code = main(
        [
            "sft",
            f"data={tmp_path / 'oracle.jsonl'}",
            f"model={tiny_model}",
            f"out={tmp_path / 'sft'}",
            "lr=3e-3",
            "epochs=4",
        ]
    )
    assert code == 0
    losses = [json.loads(x)["loss"] for x in (tmp_path / "sft" / "metrics.jsonl").open()]
    assert fmean(losses[-4:]) < 0.5 * fmean(losses[:4]), losses
    before, after = _held_out_reward(tiny_model), _held_out_reward(tmp_path / "sft" / "model")
    assert after > before + 0.5, (before, after)
