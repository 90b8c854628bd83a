"""Every user-facing config key says what it is: ``--help`` and ``agentgym envs ENV`` print
these descriptions, and they are the only documentation of most keys."""

import pytest

import agentgym
from agentgym.config import describe
from agentgym.policies.config import policy_models
from agentgym.retrieval.config import IndexConfig, ServeConfig
from agentgym.settings import EvalConfig, ServeEnvConfig
from agentgym.trainers.grpo.config import TrainConfig
from agentgym.trainers.sft import SFTConfig

COMMANDS = [EvalConfig, TrainConfig, SFTConfig, ServeConfig, IndexConfig, ServeEnvConfig]


def undescribed(model) -> list[str]:
    return [key for key, _, text in describe(model) if not text.strip()]


@pytest.mark.parametrize(
    "model", COMMANDS + list(policy_models().values()), ids=lambda m: m.__name__
)
def test_every_command_and_policy_key_has_a_description(model):
    assert undescribed(model) == []


@pytest.mark.parametrize("env_id", [s.id for s in agentgym.list_envs() if s.id != "not_an_env"])
def test_every_environment_option_has_a_description(env_id):
    assert undescribed(agentgym.spec(env_id).load().config_model) == []


def test_the_help_lists_them():
    from agentgym.cli.show import config_help

    text = config_help([("", TrainConfig)])
    assert "learner.lr [1e-05]" in text and "AdamW's peak learning rate" in text
