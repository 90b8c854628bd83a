"""A policy backend is its module and its config model: a user's trainable one is valid in
train as the built-ins are (docs/extending.md: a new policy backend)."""

from __future__ import annotations

import gc
import json
import sys

import pytest

from agentgym.cli import main
from agentgym.policies.config import TrainableConfig, policy_models

SIBLING = '''
from typing import Literal

from pydantic import Field

from agentgym.policies.config import TrainableConfig


class SiblingConfig(TrainableConfig):
    """hf's sampler under a name of its own."""

    name: Literal["sibling"] = Field("sibling", description="transformers generate, again")
    note: str = Field("", description="a key only this backend has")

    def reads_images(self, model):
        return False

    def build(self, baselines, log_dir):
        from agentgym.policies.hf import HFPolicy

        return HFPolicy.load(self.require_model(), self.sampling(), device="cpu")

    def sampler(self, learner, folder, log_dir):
        from transformers import AutoTokenizer

        from agentgym.policies.hf import HFPolicy

        tokenizer = AutoTokenizer.from_pretrained(self.model)
        return HFPolicy.for_learner(learner, tokenizer, self.sampling(), learner.images)
'''


@pytest.fixture
def sibling(tmp_path, monkeypatch):
    (tmp_path / "my_backend.py").write_text(SIBLING)
    monkeypatch.chdir(tmp_path)
    yield "my_backend"
    sys.modules.pop("my_backend", None)
    gc.collect()  # the class leaves TrainableConfig.__subclasses__() with its module


def test_a_users_trainable_backend_trains_and_help_lists_its_keys(
    sibling, tiny_model, tmp_path, capsys
):
    out = tmp_path / "run"
    small = ["trainer.group_size=2", "trainer.tasks_per_step=2", "policy.max_new_tokens=8"]
    code = main(
        ["train", f"import={sibling}", "env=digits", "policy=sibling", "policy.note=hi",
         f"policy.model={tiny_model}", "device=cpu", "trainer.steps=1", "trainer.check_tasks=0",
         *small, f"out={out}"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    saved = json.loads((out / "config.json").read_text())["policy"]
    assert (saved["name"], saved["note"]) == ("sibling", "hi")  # all its keys, not the base's
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
    with pytest.raises(SystemExit):
        main(["train", "--import", sibling, "--help"])
    assert "policy.note ['']" in capsys.readouterr().out


def test_a_backend_that_cannot_train_is_refused_naming_those_that_can(tiny_model, capsys):
    code = main(["train", "policy=openai", "policy.model=x", "trainer.steps=1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown policy 'openai'" in err and "train with one of hf, vllm" in err, err
    assert set(policy_models(TrainableConfig)) == {"hf", "vllm"}  # the sibling has gone
