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


PLAYWRIGHT = """
import asyncio


class Connection:
    async def wrap_api_call(self):
        await asyncio.Event().wait()  # Chromium stopped (SIGSTOP): no reply ever comes


async def snapshot():
    return await Connection().wrap_api_call()
"""


class BrowserEnv(GuessNumberEnv):
    """Its page snapshot goes through a library whose module is playwright's."""

    async def astep(self, action):
        library: dict = {"__name__": "playwright._impl._connection"}
        exec(compile(PLAYWRIGHT, "/site-packages/playwright/_impl/_connection.py", "exec"), library)
        return await library["snapshot"]()


def test_the_stall_names_the_envs_own_call_and_the_component_behind_it():
    """Not the library's innermost line (``Zone.run_async (zones.py:58)``): the env's call,
    and the browser it waits on."""
    with pytest.raises(StallError) as caught:
        asyncio.run(rollout(BrowserEnv, ORACLE, [0], 1, RolloutConfig(stall_timeout_s=1)))
    line = str(caught.value).splitlines()[1]
    assert "BrowserEnv.astep (test_watchdog.py:" in line, line
    assert "waiting on the browser (Chromium) (playwright: Connection.wrap_api_call)" in line


def test_slow_progress_is_not_a_stall():
    class Slow(GuessNumberEnv):
        async def astep(self, action):
            await asyncio.sleep(0.6)  # each turn under the timeout, the episode well over it
            return await super().astep(action)

    trajs = asyncio.run(rollout(Slow, ORACLE, [0], 1, RolloutConfig(stall_timeout_s=1)))
    assert trajs[0].success and len(trajs[0].turns) >= 3
