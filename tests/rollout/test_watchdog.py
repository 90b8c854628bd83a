"""The stall watchdog: a frozen env or policy fails the run within rollout.stall_timeout_s,
naming the call each episode in flight waits in; slow progress is not a stall."""

from __future__ import annotations

import asyncio
import time

import pytest

from agentgym.envs.guess_number import GuessNumberEnv
from agentgym.errors import StallError
from agentgym.policies.scripted import ScriptedPolicy
from agentgym.rollout import RolloutConfig, rollout

ORACLE = ScriptedPolicy(GuessNumberEnv.oracle)


class FrozenEnv(GuessNumberEnv):
    """Its second turn never returns (a container paused, a browser stopped)."""

    async def astep(self, action):
        if self.turn >= 1:
            await asyncio.Event().wait()
        return await super().astep(action)


class FrozenPolicy(ScriptedPolicy):
    """Its engine stops answering (SIGSTOP on the engine core)."""

    async def act(self, ctx, max_tokens):
        await asyncio.get_running_loop().create_future()


@pytest.mark.parametrize(
    ("env", "policy", "where"),
    [
        (FrozenEnv, ORACLE, "FrozenEnv.astep"),
        (GuessNumberEnv, FrozenPolicy(GuessNumberEnv.oracle), "FrozenPolicy.act"),
    ],
)
def test_a_frozen_component_fails_the_run_naming_it(env, policy, where):
    t0 = time.monotonic()
    with pytest.raises(StallError, match="no episode made progress for 2 s") as caught:
        asyncio.run(rollout(env, policy, [0, 1, 2], 1, RolloutConfig(stall_timeout_s=2)))
    assert time.monotonic() - t0 < 15
    message = str(caught.value)
    assert "3 in flight" in message and where in message and "task 1 sample 0" in message


def test_slow_progress_is_not_a_stall():
    class Slow(GuessNumberEnv):
        async def astep(self, action):
            await asyncio.sleep(0.6)  # each turn under the timeout, the episode well over it
            return await super().astep(action)

    trajs = asyncio.run(rollout(Slow, ORACLE, [0], 1, RolloutConfig(stall_timeout_s=1)))
    assert trajs[0].success and len(trajs[0].turns) >= 3
