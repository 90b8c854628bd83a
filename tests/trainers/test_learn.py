"""A real pretrained model learns here: the README's main command, in short."""

import json
from pathlib import Path

import pytest

from agentgym.cli import main

SMOLLM2 = Path(__file__).parents[2] / ".cache" / "models" / "smollm2-135m-instruct"


@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.models
def test_the_readme_main_command_in_short_raises_the_held_out_reward(tmp_path, capsys):
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
    shown = capsys.readouterr().out  # the engine's start, phase by phase
    for phase in ("loading the model", "allocating the KV cache", "ready in"):
        assert f"the vLLM engine{':' if 'ready' not in phase else ''} {phase}" in shown, shown
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    evals = [r for r in map(json.loads, lines) if "phase" in r]
    assert [e["phase"] for e in evals] == ["base", "sft", "grpo"]
    base, last = evals[0]["eval_reward_mean"], evals[-1]["eval_reward_mean"]
    assert last > base + 0.1, evals


@pytest.mark.slow
@pytest.mark.browser
def test_a_cold_start_teaches_the_tiny_vision_language_policy_held_out_gui_actions(
    tiny_vision_model, tmp_path
):
    """UI-R1's task through the whole VL path (screenshots in, pixels to the learner): SFT
    on the oracle's answers raises the greedy reward on held-out screenshots from 0 of 3 (the
    random model writes no action) to a well-formed action on every one (1 of 3; here 1.33:
    the right type on a third of them; no point inside the target yet)."""
    code = main(
        [
            "train", "env=gui_action", "env.samples=30", "policy=hf",
            f"policy.model={tiny_vision_model}", "device=cpu", "policy.max_new_tokens=64",
            "cold_start.episodes=32", "cold_start.epochs=40", "cold_start.lr=3e-3",
            "trainer.steps=1", "trainer.tasks_per_step=2", "trainer.group_size=2",
            "trainer.eval_tasks=6", f"out={tmp_path}",
        ]
    )  # fmt: skip
    assert code == 0
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    evals = {r["phase"]: r["eval_reward_mean"] for r in map(json.loads, lines) if "phase" in r}
    assert evals["base"] < 0.5 and evals["sft"] >= 1.0, evals
