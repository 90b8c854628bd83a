"""``env=harness``: agent programs run unmodified against the gateway, scored by a task env.

Real programs (an OpenAI-SDK script, the Agents SDK research agent, mini-swe-agent in the swe
sandbox) and adversarial ones (a forged history, a hang, a flood, malformed requests, a
crash); the captured tokens match the model's own log-probs and train."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import eval_run
from trainers.grpo.batch import build_batch
from trainers.grpo.config import GRPOConfig

GRPO = GRPOConfig()
MINI_VARS = {"MSWEA_CONFIGURED": "true", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}

PROGRAMS = Path(__file__).parents[1] / "gateway" / "programs.py"


def harness(model: Path, mode: str, *more: str) -> list[str]:
    """eval arguments: the tiny model plays deep_research through ``programs.py MODE``."""
    command = json.dumps([sys.executable, str(PROGRAMS), mode])
    return ["env=harness", "env.task=deep_research", f"env.command={command}", "policy=hf",
            f"policy.model={model}", "policy.max_new_tokens=8", *more]  # fmt: skip


def check_segment_logprobs(segment, model, tol: float) -> None:
    """The sampler's log-probs of a segment's sampled tokens equal a forward pass's."""
    import torch

    sampled = [i for i, m in enumerate(segment.loss_mask) if m]
    assert sampled and sampled[0] > 0
    with torch.no_grad():
        logits = model(torch.tensor([segment.token_ids])).logits[0].float()
    logp = torch.log_softmax(logits[:-1], dim=-1).gather(
        1, torch.tensor(segment.token_ids[1:])[:, None]
    )[:, 0]
    got = torch.tensor([segment.logprobs[i] for i in sampled])
    assert torch.allclose(got, logp[torch.tensor(sampled) - 1], atol=tol)


def test_a_program_calls_join_into_one_segment_with_the_models_logprobs(
    tiny_model, hf_model, tmp_path
):
    summary, trajs = eval_run(tmp_path, *harness(tiny_model, "twice"), "episodes=3")
    assert summary["failed_episodes"] == 0 and len(trajs) == 3
    for traj in trajs:
        assert not traj.attribution_failed and len(traj.segments) == 1
        segment = traj.segments[0]
        assert sum(segment.loss_mask) > 0 and traj.sampled_tokens == sum(segment.loss_mask)
        check_segment_logprobs(segment, hf_model, tol=1e-3)
        assert traj.turns[0].reward_parts  # scored by deep_research's own verifier


def test_a_forged_history_is_not_attributed_and_not_trained(tiny_model, tmp_path):
    summary, (traj,) = eval_run(tmp_path, *harness(tiny_model, "forged"), "episodes=1")
    assert traj.attribution_failed and traj.info["unattributed"]
    assert not build_batch([traj, traj.model_copy(update={"reward": 1.0})], GRPO).sequences


def test_malformed_requests_get_400_and_the_episode_goes_on(tiny_model, tmp_path):
    summary, (traj,) = eval_run(tmp_path, *harness(tiny_model, "malformed"), "episodes=1")
    assert summary["failed_episodes"] == 0 and traj.stop_reason != "error"
    assert traj.turns[0].action.content == "400"  # its last line: the third reply's status


@pytest.mark.parametrize(
    ("mode", "more", "why"),
    [
        ("hang", ["env.time_budget_s=3"], "did not end within 3 s"),
        ("crash", [], "exited with 3"),
        ("flood", [], "more than 64 model calls"),
    ],
)
def test_a_program_that_misbehaves_fails_its_episode_with_the_reason(
    tiny_model, tmp_path, mode, more, why
):
    t0 = time.perf_counter()
    summary, (traj,) = eval_run(
        tmp_path, *harness(tiny_model, mode, *more), "episodes=1", "rollout.max_failure_rate=1"
    )
    assert summary["failed_episodes"] == 1 and traj.stop_reason == "error"
    assert why in traj.info["error"] and "ProgramError" in traj.info["error"]
    assert time.perf_counter() - t0 < 120  # a hang costs its budget, not an hour


def test_the_research_agent_runs_unmodified_on_the_agents_sdk(tiny_model, tmp_path):
    pytest.importorskip("agents")
    args = harness(tiny_model, "twice")
    args[2] = "env.command=[python, -m, agentgym.programs.research_agent]"
    args[2] = args[2].replace("python", sys.executable)
    summary, trajs = eval_run(tmp_path, *args, "episodes=2")
    assert summary["failed_episodes"] == 0
    assert all(t.segments and not t.attribution_failed for t in trajs)


def test_captured_tokens_train(tiny_model, tmp_path):
    """The captured segments become the learner's sequences, and a train step runs on them."""
    from agentgym.cli import main

    _, trajs = eval_run(
        tmp_path / "eval", *harness(tiny_model, "twice"), "episodes=2", "group_size=2"
    )
    trajs[0].reward = 1.0
    batch = build_batch(trajs, GRPO)
    assert [s.token_ids for s in batch.sequences] == [t.segments[0].token_ids for t in trajs]
    command = json.dumps([sys.executable, str(PROGRAMS), "twice"])
    args = ["train", "env=harness", "env.task=deep_research", f"env.command={command}",
            "policy=hf", f"policy.model={tiny_model}", "policy.max_new_tokens=8", "device=cpu",
            "trainer.steps=1", "trainer.tasks_per_step=2", "trainer.group_size=2",
            "trainer.check_tasks=0", "trainer.eval_tasks=0", f"out={tmp_path}/train"]  # fmt: skip
    assert main(args) == 0
    rows = (tmp_path / "train" / "metrics.jsonl").read_text().splitlines()
    step = next(r for r in map(json.loads, rows) if r.get("step") == 0 and "reward_mean" in r)
    assert step["mean_sampled_tokens"] > 0 and step["attribution_failed"] == 0
    assert step["trainable_token_fraction"] < 1  # the prompts count too


@pytest.mark.docker
def test_a_programs_shell_runs_in_the_tasks_sandbox(tiny_model, tmp_path):
    args = harness(tiny_model, "shell")
    args[1] = "env.task=swe"
    summary, (traj,) = eval_run(tmp_path, *args, "env.task_options={difficulty: 0}", "episodes=1")
    assert summary["failed_episodes"] == 0
    assert traj.turns[0].action.content == "planted in the sandbox"
    assert not Path("made_by_program.txt").exists()  # not on this machine


@pytest.mark.docker
@pytest.mark.slow
def test_mini_swe_agent_runs_unmodified_in_the_sandbox(tiny_model, tmp_path):
    minisweagent = pytest.importorskip("minisweagent")
    config = Path(minisweagent.__file__).parent / "config" / "mini.yaml"
    ours = Path(__file__).parents[2] / "agentgym" / "programs" / "mini_swe.yaml"
    mini = Path(sys.executable).parent / "mini"
    command = [str(mini), "-c", str(config), "-c", str(ours), "-t", "{task}", "--yolo",
               "--exit-immediately", "-o", str(tmp_path / "mini.traj.json")]  # fmt: skip
    args = ["env=harness", "env.task=swe", "env.task_options={difficulty: 0}",
            f"env.command={json.dumps(command)}", "policy=hf", f"policy.model={tiny_model}",
            "policy.max_new_tokens=16", "episodes=1",
            f"env.variables={json.dumps(MINI_VARS)}"]  # fmt: skip
    summary, (traj,) = eval_run(tmp_path / "run", *args)
    assert summary["failed_episodes"] == 0, traj.info
    assert traj.segments and not traj.attribution_failed
    assert "tests_passed" in json.dumps(traj.turns[0].reward_parts) or traj.turns[0].reward_parts


def test_a_tool_loop_program_reaches_the_env_tools_and_its_calls_join(tiny_model):
    """The plain OpenAI-SDK loop (tool_loop.py) lists the env's tools, runs the model's calls
    through them, and its four calls (each history extending the last with a tool result)
    join into one segment."""
    from transformers import AutoTokenizer

    from agentgym.evaluate import aevaluate
    from agentgym.policies.base import SamplingConfig
    from agentgym.registration import make
    from tests.gateway.test_gateway import Echo

    policy = Echo(AutoTokenizer.from_pretrained(tiny_model), SamplingConfig(max_new_tokens=64))
    command = [sys.executable, "-m", "agentgym.programs.tool_loop"]
    trajs: list = []

    def env():
        return make("harness", task="deep_research", command=command,
                    variables={"AGENT_MAX_TURNS": "4"})  # fmt: skip

    summary = asyncio.run(aevaluate(env, policy, episodes=4, on_episode=trajs.append))
    assert summary["failed_episodes"] == 0
    calling = [t for t in trajs if t.turns[0].info["program_tool_calls"] == 4]
    assert calling, "Echo calls search on odd episodes"
    for traj in calling:
        (segment,) = traj.segments
        starts = sum(1 for a, b in zip([0, *segment.loss_mask], segment.loss_mask) if b > a)
        assert starts == 4 and not traj.attribution_failed
