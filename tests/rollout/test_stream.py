"""GroupStream: tasks in at any time, whole groups out as they finish."""

import asyncio

import pytest

import agentgym
from agentgym.envs.guess_number import GuessNumberEnv
from agentgym.policies.scripted import ScriptedPolicy
from agentgym.policy import Policy
from agentgym.rollout import EnvPool, GroupStream, RolloutConfig


class SlowOn(Policy):
    """The oracle, slow on one task."""

    def __init__(self, slow_task, delay=0.2):
        self.oracle = ScriptedPolicy(GuessNumberEnv.oracle)
        self.slow_task, self.delay = slow_task, delay

    def start(self, messages, tools, info, seed):
        return self.oracle.start(messages, tools, info, seed)

    async def act(self, ctx, max_tokens):
        if ctx.seed // 100_003 == self.slow_task:
            await asyncio.sleep(self.delay)
        return await self.oracle.act(ctx, max_tokens)


def test_groups_come_whole_in_the_order_they_finish_and_tasks_can_be_added_later():
    async def main():
        envs = EnvPool(lambda: agentgym.make("guess_number"))
        stream = GroupStream(envs, SlowOn(slow_task=0), 3, RolloutConfig(concurrency=4))
        try:
            stream.submit(0)
            stream.submit(1)
            first = await stream.next()
            stream.submit(2)  # a task added while another is still playing
            rest = [await stream.next(), await stream.next()]
        finally:
            await stream.aclose()
            await envs.aclose()
        return [first, *rest]

    groups = asyncio.run(main())
    assert groups[0][0].task == 1  # task 0 is slow: 1 finishes first
    assert sorted(g[0].task for g in groups) == [0, 1, 2]
    for g in groups:
        assert [t.sample for t in g] == [0, 1, 2] and {t.task for t in g} == {g[0].task}
        assert all(t.success for t in g)


def test_failed_episodes_stay_in_their_group_until_too_many_fail():
    class Flaky(GuessNumberEnv):
        async def astep(self, action):
            if self.task_seed == 3:
                raise RuntimeError("container died")
            return await super().astep(action)

    async def main(tasks):
        envs = EnvPool(Flaky)
        stream = GroupStream(envs, ScriptedPolicy(GuessNumberEnv.oracle), 2, RolloutConfig())
        try:
            for task in tasks:
                stream.submit(task)
            return [await stream.next() for _ in tasks]
        finally:
            await stream.aclose()
            await envs.aclose()

    groups = asyncio.run(main(range(10)))  # 2 of 20 episodes fail: within the 10% allowed
    [bad] = [g for g in groups if g[0].task == 3]
    assert [t.stop_reason for t in bad] == ["error", "error"]
    assert "container died" in bad[0].info["error"]
    with pytest.raises(agentgym.RolloutError, match="container died"):
        asyncio.run(main([3, 4]))


def test_closing_the_stream_abandons_episodes_in_flight_and_closes_their_envs():
    closed = []

    class Tracked(GuessNumberEnv):
        async def aclose(self):
            closed.append(self)
            await super().aclose()

    async def main():
        envs = EnvPool(Tracked)
        stream = GroupStream(envs, SlowOn(slow_task=0, delay=30), 2, RolloutConfig(concurrency=2))
        stream.submit(0)
        await asyncio.sleep(0.1)
        await asyncio.wait_for(stream.aclose(), 5)
        await envs.aclose()

    asyncio.run(main())
    assert len(closed) == 2
