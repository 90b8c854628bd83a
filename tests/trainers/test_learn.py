"""A real pretrained model learns here: the README's main command, in short."""

import json
from pathlib import Path

import pytest

from agentgym.cli import main

SMOLLM2 = Path(__file__).parents[2] / ".cache" / "models" / "smollm2-135m-instruct"


@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.models
def test_the_readme_main_command_in_short_raises_the_held_out_reward(tmp_path):
    if not (SMOLLM2 / "config.json").exists():
        pytest.skip("no packaged model: bash scripts/setup.sh --models")
    pytest.importorskip("vllm")
    code = main(
        [
            "train",
            "recipe=deep_research_smollm2",
            f"policy.model={SMOLLM2}",
            "trainer.steps=1",
            "trainer.eval_tasks=16",
            f"out={tmp_path}",
        ]
    )
    assert code == 0
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    evals = [r for r in map(json.loads, lines) if "phase" in r]
    assert [e["phase"] for e in evals] == ["base", "sft", "grpo"]
    base, last = evals[0]["eval_reward_mean"], evals[-1]["eval_reward_mean"]
    assert last > base + 0.1, evals
