"""Sampling ahead of the learner: the staleness bound, whole groups, nothing lost or trained
twice (also across a resume), and the weights swapped between the turns of an episode."""

import asyncio
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import agentgym
from agentgym.policy import Policy
from agentgym.rollout import EnvPool, GroupStream, RolloutConfig, read_trajectories
from agentgym.trainers.grpo.ahead import Ahead, oldest_version, staleness
from agentgym.types import Message, Observation, Sample, Trajectory


class Versioned(Policy):
    """A token-level stand-in that samples through the weight gate, each turn a random while
    (``slow``: a task whose turns take far longer), guessing at random."""

    def __init__(self, seed, slow=None):
        self.rng, self.slow = random.Random(seed), slow

    def start(self, messages, tools, info, seed):
        ctx = super().start(messages, tools, info, seed)
        ctx.append([1] * 10, sampled=False)
        return ctx

    async def act(self, ctx, max_tokens):
        task = ctx.seed // 100_003
        async with self.gate.sampling():
            version = self.version
            await asyncio.sleep(0.3 if task == self.slow else self.rng.random() * 0.004)
        ctx.append([2] * 5, sampled=True, logprobs=[-1.0] * 5, version=version)
        guess = self.rng.randint(1, 100)
        text = f'<tool_call>{{"name": "guess", "arguments": {{"number": {guess}}}}}</tool_call>'
        return Sample(text=text, token_ids=[2] * 5, logprobs=[-1.0] * 5)

    def observe(self, ctx, messages):
        ctx.append([3] * 3, sampled=False)


async def learn(policy, ahead, steps, first, k, tmp_path, rng):
    """Play ``steps`` steps as the loop does; return (trained tasks, dropped groups)."""
    trained, dropped = [], 0
    for step in range(first, first + steps):
        trajs, n = await ahead.batch(step, tmp_path / f"step_{step}.jsonl")
        dropped += n
        groups = {}
        for t in trajs:
            groups.setdefault(t.task, []).append(t)
        assert len(groups) == ahead.tasks
        for task, group in groups.items():
            assert sorted(t.sample for t in group) == list(range(ahead.stream.group_size))
            assert step - oldest_version(group, step) <= k  # the bound
        assert [t.key for t in read_trajectories(tmp_path / f"step_{step}.jsonl")] == [
            t.key for t in trajs
        ]
        trained += sorted(task - 1000 for task in groups)  # task indices, as the state has
        async with policy.gate.changing():  # the update, as an hf sampler's
            await asyncio.sleep(rng.random() * 0.01)
            policy.version = step + 1
    return trained, dropped


def run(k, tasks, g, seed, tmp_path, state=None, first=0, steps=4, slow=None):
    async def main():
        policy = Versioned(seed, slow)
        policy.version = first
        envs = EnvPool(lambda: agentgym.make("guess_number", max_turns=3))
        stream = GroupStream(envs, policy, g, RolloutConfig(concurrency=3))
        ahead = Ahead(stream, 1000, tasks, k, state)
        try:
            trained, dropped = await learn(
                policy, ahead, steps, first, k, tmp_path, random.Random(seed)
            )
            return trained, dropped, ahead.state()
        finally:
            await ahead.aclose()
            await envs.aclose()

    return asyncio.run(main())


@settings(max_examples=15, deadline=None)
@given(
    k=st.integers(1, 3),
    tasks=st.integers(1, 3),
    g=st.integers(1, 3),
    seed=st.integers(0, 10_000),
)
def test_no_group_is_older_than_k_and_none_is_lost_or_trained_twice_across_a_resume(
    tmp_path_factory, k, tasks, g, seed
):
    tmp_path = tmp_path_factory.mktemp("ahead")
    trained, dropped, state = run(k, tasks, g, seed, tmp_path)
    json.dumps(state)  # a checkpoint keeps it as JSON
    assert len(trained) == len(set(trained)) == 4 * tasks
    assert not set(trained) & set(state["pending"])
    assert len(trained) + len(state["pending"]) + dropped == state["next_task"]
    assert dropped == state["dropped"]
    # a resumed run replays the groups that were started and not trained, then goes on
    more, dropped2, after = run(k, tasks, g, seed + 1, tmp_path, state, first=4)
    assert not set(more) & set(trained) and len(more) == len(set(more))
    replayed = set(state["pending"])
    assert replayed <= set(more) | set(after["pending"]) or dropped2 > 0
    assert len(trained + more) + len(after["pending"]) + after["dropped"] == after["next_task"]


def test_a_group_overtaken_by_more_than_k_updates_is_dropped_and_counted(tmp_path):
    # task index 1 plays slowly: by the time it ends, the learner is 2+ versions further
    trained, dropped, state = run(1, 1, 2, 0, tmp_path, steps=8, slow=1001)
    assert 1 not in trained and dropped == state["dropped"] >= 1  # more on a loaded machine
    assert len(trained) == 8


def test_staleness_metrics_count_sampled_tokens_by_age():
    t = Trajectory(env_id="e", task=0, sample=0, messages=[], token_versions=[None, 3, 3, 4, None])
    assert staleness([t], 4) == {
        "staleness_mean": pytest.approx(2 / 3),
        "staleness_max": 1,
        "staleness_hist": [1, 2],
    }
    none = Trajectory(env_id="e", task=0, sample=0, messages=[])
    assert staleness([none], 4)["staleness_max"] == 0


def test_an_episode_that_spans_a_sync_is_stamped_with_both_versions_each_its_own(tiny_model):
    import torch

    from agentgym.policies.base import SamplingConfig
    from agentgym.policies.hf import HFPolicy
    from agentgym.rollout import run_episode

    policy = HFPolicy.load(str(tiny_model), SamplingConfig(max_new_tokens=8), device="cpu")
    old = {k: v.clone() for k, v in policy.model.state_dict().items()}

    class GoOn:
        """Three turns whatever the model says; the learner updates after the first."""

        env_id, tool_specs, messages, turn = "go_on", [], [], 0

        async def areset(self, seed=None, options=None):
            return Observation(messages=[Message(role="user", content="Count to three.")]), {}

        async def astep(self, action):
            self.turn += 1
            if self.turn == 1:  # the learner updates while this episode is in flight
                async with policy.gate.changing():
                    with torch.no_grad():
                        for p in policy.model.parameters():
                            p.add_(torch.randn_like(p) * 0.05)
                    policy.version = 1
            obs = Observation(messages=[Message(role="user", content="Go on.")])
            return obs, 0.0, False, False, {}

    traj = asyncio.run(run_episode(GoOn(), policy, 0, 0, RolloutConfig(max_turns=3)))
    new = {k: v.clone() for k, v in policy.model.state_dict().items()}
    assert len(traj.turns) == 3 and len(traj.token_versions) == len(traj.token_ids)
    for turn, version in zip(traj.turns, [0, 1, 1], strict=True):
        start, end = turn.token_span
        assert set(traj.token_versions[start:end]) == {version}
    assert all(v is None for v, m in zip(traj.token_versions, traj.loss_mask) if not m)

    def recomputed(state):
        policy.model.load_state_dict(state)
        with torch.no_grad():
            logits = policy.model(torch.tensor([traj.token_ids])).logits[0, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(1, torch.tensor(traj.token_ids[1:])[:, None])
        return [0.0, *logp[:, 0].tolist()]

    by_version = {0: recomputed(old), 1: recomputed(new)}
    for i, v in enumerate(traj.token_versions):
        if v is not None:  # recorded by the weights that sampled it, not by the others
            assert traj.logprobs[i] == pytest.approx(by_version[v][i], abs=1e-4)
    later = [i for i, v in enumerate(traj.token_versions) if v == 1]
    assert max(abs(by_version[0][i] - traj.logprobs[i]) for i in later) > 1e-2


def _versions_line_up(out, k=1):
    trained = []
    for path in sorted((out / "trajectories").glob("step_*.jsonl")):
        step = int(path.stem.split("_")[1])
        trajs = list(read_trajectories(path))
        for t in trajs:
            assert len(t.token_versions) == len(t.token_ids)
            assert [v is not None for v in t.token_versions] == [bool(m) for m in t.loss_mask]
            assert all(step - k <= v <= step for v in t.token_versions if v is not None)
        trained += sorted({t.task for t in trajs})
    assert len(trained) == len(set(trained))  # no group trained twice
    return trained


@pytest.mark.slow
def test_train_hf_one_step_off_policy_records_staleness(tiny_model, tmp_path):
    from tests.conftest import train_digits

    code = train_digits(
        tiny_model, tmp_path, "trainer.max_off_policy_steps=1", "trainer.steps=4",
        "trainer.group_size=3", "trainer.tasks_per_step=2", "policy.max_new_tokens=16",
    )  # fmt: skip
    assert code == 0
    got = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in got] == [0, 1, 2, 3]
    for m in got:
        assert m["staleness_max"] <= 1 and m["dropped_groups"] == 0
        assert sum(m["staleness_hist"]) > 0 and "tis_mean" in m
    assert len(_versions_line_up(tmp_path)) == 8


@pytest.mark.slow
def test_kill_during_an_async_run_then_resume_trains_no_group_twice(tiny_model, tmp_path):
    import os
    import signal
    import subprocess
    import time

    from tests.trainers.test_train import _train_cmd

    cmd = _train_cmd(tiny_model, tmp_path, "trainer.max_off_policy_steps=2")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    metrics = tmp_path / "metrics.jsonl"
    while time.monotonic() < deadline:
        if metrics.exists() and metrics.read_text().count("\n") >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step_000002"
    state = json.loads((tmp_path / "checkpoints" / "step_000002" / "state.json").read_text())
    pending = state["sampler"]["pending"]
    assert len(pending) == 2 * 4  # k x tasks_per_step groups were under way at the save
    before = _versions_line_up(tmp_path, k=2)[:8]  # steps 0 and 1: kept as they were
    subprocess.run([*cmd, "trainer.resume=true"], check=True, capture_output=True, timeout=600)
    got = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [m["step"] for m in got] == list(range(6))
    trained = _versions_line_up(tmp_path, k=2)  # no group twice, across the kill
    assert trained[:8] == before and len(trained) == 24
    final = json.loads((tmp_path / "checkpoints" / "step_000006" / "state.json").read_text())
    # the groups under way at the save were replayed (task seed = index with seed=0)
    lost = set(pending) - set(trained[8:]) - set(final["sampler"]["pending"])
    assert len(lost) <= final["sampler"]["dropped"]


@pytest.mark.vllm
@pytest.mark.slow
def test_two_vllm_engines_one_step_off_policy_both_synced_and_probed(
    tiny_model, tmp_path, monkeypatch
):
    from agentgym.trainers.grpo import sync

    probed = []
    real = sync._probe_one

    async def counting(policy, *args):
        probed.append(id(policy))
        return await real(policy, *args)

    monkeypatch.setattr(sync, "_probe_one", counting)

    from agentgym.cli import main

    code = main(
        [
            "train", "env=digits", f"policy.model={tiny_model}", "policy=vllm", "device=cpu",
            "trainer.steps=3", "learner.lr=2e-3", "policy.max_new_tokens=16",
            "trainer.max_off_policy_steps=1", "trainer.sync_probe_tol=1e-3", f"out={tmp_path}",
            "policy.engines=2", "policy.engine={max_model_len: 2048, gpu_memory_utilization: "
            "0.1, enforce_eager: true, max_num_batched_tokens: 16384}",
        ]
    )  # fmt: skip
    assert code == 0
    assert len(probed) == 6 and len(set(probed)) == 2  # each engine, after each of 3 syncs
    got = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(got) == 3 and all(m["sync_probe_gap"] < 1e-3 for m in got)
    assert max(m["staleness_max"] for m in got) == 1  # sampled ahead, and within the bound
    assert len(_versions_line_up(tmp_path)) == 12
