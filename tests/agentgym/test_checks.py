"""The reward check: an env that pays for nothing is refused before any training starts."""

import asyncio

import pytest

import agentgym
from agentgym.checks import check_rewards, null_baselines, verdict
from agentgym.cli import main
from agentgym.envs.guess_number import GuessNumberEnv
from agentgym.errors import RewardCheckError
from agentgym.tools import tool
from agentgym.types import Message, ToolSpec


class PaysSilence(GuessNumberEnv):
    """A broken reward: a reply without a guess ends the episode with full marks."""

    def on_reply(self, content: str) -> list[Message]:
        self.add_reward("correct", 1.0)
        self.end(success=True)
        return []


class OracleFails(GuessNumberEnv):
    """A broken reward the other way: the right guess is not paid."""

    @tool
    def guess(self, number: int) -> str:
        """Guess the secret number.

        Args:
            number: Your guess.
        """
        return "higher"


agentgym.register("pays_silence", PaysSilence)


def test_null_baselines_call_each_tool_with_trivial_arguments():
    spec = ToolSpec(
        name="f",
        description="",
        parameters={"properties": {"a": {"type": "string"}, "n": {"type": "integer"}}},
    )
    scripts = null_baselines([spec])
    assert set(scripts) == {"silent", "prose", "trivial:f"}
    assert scripts["trivial:f"]([], {}, None) == (
        '<tool_call>{"name": "f", "arguments": {"a": "", "n": 0}}</tool_call>'
    )


def test_a_reward_that_pays_silence_is_refused_naming_the_tasks():
    rows = asyncio.run(check_rewards("pays_silence", {}, tasks=4))
    bad = {r.baseline: r for r in rows if not r.ok}
    assert set(bad) == {"silent", "prose"} and bad["silent"].paid == [0, 1, 2, 3]
    with pytest.raises(RewardCheckError, match=r"null baseline 'silent' earned \+1\.000.*0, 1"):
        verdict("pays_silence", rows)
    assert all(r.ok for r in asyncio.run(check_rewards("guess_number", {}, tasks=4)))


def test_an_oracle_that_fails_is_refused():
    agentgym.register("oracle_fails", OracleFails)
    rows = asyncio.run(check_rewards("oracle_fails", {}, tasks=3))
    assert not rows[0].ok and rows[0].baseline == "oracle"


def test_train_refuses_before_any_work_and_check_prints_the_table(tiny_model, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "env=pays_silence", "policy=hf", f"policy.model={tiny_model}", f"out={out}"]
    assert main([*args, "trainer.check_tasks=4", f"import={__name__}"]) == 2
    err = capsys.readouterr().err
    assert "null baseline 'silent' earned" in err and "trainer.check_tasks=0" in err
    assert not (out / "checkpoints").exists() and not (out / "metrics.jsonl").exists()
    assert main(["check", "env=pays_silence", "tasks=2", f"import={__name__}"]) == 2
    assert "silent" in capsys.readouterr().out
