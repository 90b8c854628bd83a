import asyncio
import time

import pytest

import agentgym
from agentgym.envs.guess_number import GuessNumberEnv
from agentgym.policies.scripted import ScriptedPolicy
from agentgym.policy import Context, Policy
from agentgym.rollout import (
    EnvPool,
    RolloutConfig,
    TrajectoryWriter,
    read_trajectories,
    rollout,
    summarize,
)
from agentgym.types import Sample


def run(policy, tasks, group, settings, **kw):
    return asyncio.run(
        rollout(lambda: agentgym.make("guess_number"), policy, tasks, group, settings, **kw)
    )


def test_groups_are_the_same_task_and_oracle_solves_all():
    trajs = run(ScriptedPolicy(GuessNumberEnv.oracle), [0, 1, 2], 3, RolloutConfig())
    assert [t.key for t in trajs] == [(t, s) for t in range(3) for s in range(3)]
    for t in trajs:
        assert t.success and t.reward == 1.0 and t.terminated and t.stop_reason == "terminated"
        assert t.messages[0].content.startswith("I am thinking")
        assert t.turns[-1].reward_parts == {"correct": 1.0}
    first = {t.task: t.messages[0].content for t in trajs if t.sample == 0}
    assert all(t.messages[0].content == first[t.task] for t in trajs)


def test_turn_limit_truncates():
    trajs = run(ScriptedPolicy(GuessNumberEnv.random), [5], 1, RolloutConfig(max_turns=2))
    assert len(trajs[0].turns) <= 2
    assert trajs[0].success or (trajs[0].truncated and trajs[0].stop_reason == "env_truncated")


class FakeTokens(Policy):
    """A token-level stand-in: 100 prompt ids, then 30 sampled ids a turn."""

    def __init__(self, delay=0.0):
        self.delay, self.in_flight, self.peak = delay, 0, 0

    def start(self, messages, tools, info, seed):
        ctx = super().start(messages, tools, info, seed)
        ctx.append([1] * 100, sampled=False)
        return ctx

    async def act(self, ctx: Context, max_tokens: int) -> Sample:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(self.delay)
        self.in_flight -= 1
        n = min(30, max_tokens)
        ctx.append([2] * n, sampled=True, logprobs=[-1.0] * n)
        return Sample(
            text='<tool_call>{"name": "guess", "arguments": {"number": 1}}</tool_call>',
            token_ids=[2] * n,
            logprobs=[-1.0] * n,
        )

    def observe(self, ctx, messages):
        ctx.append([3] * 10, sampled=False)


def test_token_budget_truncates_and_masks_line_up():
    trajs = run(FakeTokens(), [3], 1, RolloutConfig(max_tokens=200, max_turns=10))
    t = trajs[0]
    assert t.truncated and t.stop_reason == "token_budget"
    assert len(t.token_ids) <= 200 and sum(t.loss_mask) == sum(
        end - start for start, end in (turn.token_span for turn in t.turns)
    )


def test_episodes_run_concurrently():
    policy = FakeTokens(delay=0.05)
    start = time.perf_counter()
    run(policy, list(range(16)), 1, RolloutConfig(concurrency=16, max_turns=2))
    assert policy.peak == 16
    assert time.perf_counter() - start < 16 * 2 * 0.05


def test_policy_failure_stops_the_run():
    class Broken(Policy):
        async def act(self, ctx, max_tokens):
            raise RuntimeError("server down")

    with pytest.raises(
        agentgym.RolloutError, match="guess_number-v0', task 0: RuntimeError: server down"
    ):
        run(Broken(), [0], 2, RolloutConfig())


def test_a_pool_keeps_environments_across_rollouts_and_drops_failed_ones():
    built: list[GuessNumberEnv] = []
    closed: list[GuessNumberEnv] = []

    class Tracked(GuessNumberEnv):
        async def aclose(self) -> None:
            closed.append(self)

    def make() -> Tracked:
        built.append(Tracked())
        return built[-1]

    class FailsOnTask(Policy):
        async def act(self, ctx, max_tokens):
            if ctx.seed // 100_003 == 9:  # episode_seed(task, sample)
                raise RuntimeError("boom")
            return await ScriptedPolicy(GuessNumberEnv.oracle).act(ctx, max_tokens)

    async def main() -> None:
        first = 0
        pool = EnvPool(make)
        settings = RolloutConfig(concurrency=2)
        for step in range(3):
            trajs = await rollout(pool, ScriptedPolicy(GuessNumberEnv.oracle), [step], 4, settings)
            assert all(t.success for t in trajs)
            first = first if step else len(built)
            assert len(built) == first <= 2 and not closed  # built once, reused by every step
        with pytest.raises(agentgym.RolloutError, match="boom"):
            await rollout(
                pool, FailsOnTask(), [9], 1, RolloutConfig(concurrency=1, max_failure_rate=0)
            )
        assert len(closed) == 1 and closed[0] not in pool.idle  # failed: closed, not reused
        await pool.aclose()
        assert set(closed) == set(built)

    asyncio.run(main())


def test_one_failed_episode_is_recorded_and_the_others_go_on(tmp_path):
    class FlakyEnv(GuessNumberEnv):
        async def astep(self, action):
            if self.task_seed == 3:
                raise RuntimeError("container died")
            return await super().astep(action)

    async def main():
        with TrajectoryWriter(tmp_path / "t.jsonl") as writer:
            return await rollout(
                FlakyEnv,
                ScriptedPolicy(GuessNumberEnv.oracle),
                list(range(10)),
                1,
                RolloutConfig(concurrency=4),
                writer,
            )

    trajs = asyncio.run(main())
    assert len(trajs) == 10
    [failed] = [t for t in trajs if t.stop_reason == "error"]
    assert failed.task == 3 and "container died" in failed.info["error"]
    assert failed.info["turn"] == 0  # turns completed before the fault
    assert all(t.success for t in trajs if t is not failed)
    assert len(list(read_trajectories(tmp_path / "t.jsonl"))) == 10  # on disk too
    s = summarize(trajs)
    assert s["failed_episodes"] == 1 and s["episodes"] == 9 and s["success_rate"] == 1.0
    # one failure more than the rate is allowed (a run of 2 survives one); past that the run
    # stops, naming the last failed episode and its cause
    oracle = ScriptedPolicy(GuessNumberEnv.oracle)
    assert len(asyncio.run(rollout(FlakyEnv, oracle, [3, 4], 1, RolloutConfig()))) == 2
    strict = RolloutConfig(max_failure_rate=0)
    with pytest.raises(agentgym.RolloutError, match=r"1 of 2 episodes failed.*task 3.*died"):
        asyncio.run(rollout(FlakyEnv, oracle, [3, 4], 1, strict))


def test_a_rerun_plays_failed_episodes_again_and_keeps_their_record(tmp_path):
    """Episodes recorded as failed (stop_reason=error) are not done: a rerun plays them
    again, the evaluation completes to the episodes asked for, the failed rows are kept in
    trajectories.failed.jsonl, and the finished ones are not replayed."""
    down = {"yes": True}

    class Flaky(GuessNumberEnv):
        async def astep(self, action):
            if self.task_seed % 2 and down["yes"]:
                raise RuntimeError("server down")
            return await super().astep(action)

    out = tmp_path / "run"
    first = agentgym.evaluate(Flaky, ScriptedPolicy(GuessNumberEnv.oracle), episodes=8, out=out,
                              settings=RolloutConfig(max_failure_rate=1))  # fmt: skip
    assert first["failed_episodes"] == 4 and first["episodes"] == 4
    assert first["episodes_asked"] == 8
    down["yes"] = False
    second = agentgym.evaluate(Flaky, ScriptedPolicy(GuessNumberEnv.oracle), episodes=8, out=out)
    assert second["episodes"] == 8 and second["failed_episodes"] == 0
    assert second["resumed_episodes"] == 4  # the 4 that had finished, not replayed
    rows = list(read_trajectories(out / "trajectories.jsonl"))
    assert sorted(t.key for t in rows) == [(t, 0) for t in range(8)]  # no duplicates
    failed = list(read_trajectories(out / "trajectories.failed.jsonl"))
    assert len(failed) == 4 and all("server down" in t.info["error"] for t in failed)


def test_a_rollout_turn_limit_is_the_envs_own_and_scores_the_final_state():
    from tests.agentgym.test_env import Echo

    class Scored(Echo):  # three turns of its own
        async def aon_turn_limit(self):
            self.add_reward("final", 0.5)
            self.end(success=False, graded=True)

    line = '<tool_call>{"name": "echo", "arguments": {"text": "x"}}</tool_call>'
    echo = ScriptedPolicy(lambda messages, info, rng: line)
    for limit in (2, 5):
        [t] = asyncio.run(rollout(Scored, echo, [0], 1, RolloutConfig(max_turns=limit)))
        assert len(t.turns) == limit and t.stop_reason == "env_truncated"
        assert t.turns[-1].reward_parts == {"final": 0.5} and t.info["graded"]
    [t] = asyncio.run(rollout(Scored, echo, [0], 1, RolloutConfig()))
    assert len(t.turns) == 3  # the env's own limit again, per episode


def test_evaluate_is_a_library_function_that_writes_and_resumes(tmp_path):
    policy = ScriptedPolicy(GuessNumberEnv.oracle)
    summary = agentgym.evaluate("guess_number", policy, episodes=6, group_size=2, out=tmp_path)
    assert summary["episodes"] == 6 and summary["success_rate"] == 1.0
    assert len(list(read_trajectories(tmp_path / "trajectories.jsonl"))) == 6
    seen = []
    again = agentgym.evaluate(
        "guess_number", policy, episodes=6, group_size=2, out=tmp_path, on_episode=seen.append
    )
    assert again["resumed_episodes"] == 6 and again["episodes"] == 6
    assert len(seen) == 6  # the resumed episodes are reported too (a progress bar starts there)
    assert agentgym.evaluate(GuessNumberEnv, policy, episodes=2)["success_rate"] == 1.0
