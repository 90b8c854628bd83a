"""GRPO on CUDA with a randomly initialised Qwen2.5-0.5B-shaped model (marker ``gpu``).

Prints the learner's tokens/s, the peak memory and the memory plan (run with ``-s`` to see
them): the figures for a closing note when a GPU is lent.
"""

import asyncio

import pytest

from agentgym.cli import load_train_config
from agentgym.testing import QWEN25_05B, build_tiny_model
from agentgym.trainers.grpo.loop import train


def grpo_figures(tmp_path, device: str, shape: dict[str, int]) -> dict[str, float]:
    """Train 4 steps of ``digits`` on ``device``; the last steps' figures and the plan."""
    import torch

    model = build_tiny_model(tmp_path / "model", shape=shape)
    cfg = load_train_config(
        [
            "env=digits",
            f"policy.model={model}",
            "policy=hf",
            f"device={device}",
            f"out={tmp_path / 'run'}",
            "trainer.steps=4",
            "trainer.tasks_per_step=8",
            "trainer.group_size=8",
            "trainer.save_every=100",
            "policy.max_new_tokens=128",
        ]
    )
    plans: list[dict[str, float]] = []
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    history = asyncio.run(train(cfg, on_plan=plans.append))
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else 0.0
    last = history[-1]
    return {
        "learner_tokens_per_second": last["learner_tokens_per_second"],
        "rollout_tokens_per_second": last["rollout_tokens_per_second"],
        "step_seconds": last["rollout_seconds"] + last["learn_seconds"] + last["sync_seconds"],
        "peak_gib": peak,
        "plan_gib": plans[0]["total"] if plans else 0.0,
        "steps": len(history),
    }


@pytest.mark.gpu
@pytest.mark.slow
def test_grpo_on_cuda_with_a_qwen25_05b_shaped_model(tmp_path):
    figures = grpo_figures(tmp_path, "cuda", QWEN25_05B)
    print("\nGRPO on CUDA, Qwen2.5-0.5B shape:", figures)
    assert figures["steps"] == 4 and figures["learner_tokens_per_second"] > 0
    assert 0 < figures["peak_gib"] <= figures["plan_gib"]  # the plan bounds what was used
