"""An env served over a WebSocket: the protocol OpenEnv's clients speak, and env=remote
playing it exactly as the env plays in-process."""

import asyncio
import json
import signal
import subprocess
import sys
import time

import httpx
import pytest
from websockets.asyncio.client import connect

import agentgym
from agentgym.envs.guess_number import GuessNumberEnv
from agentgym.policies.scripted import ScriptedPolicy
from agentgym.rollout import RolloutConfig, rollout
from tests.conftest import eval_run, free_port


def serve() -> tuple[subprocess.Popen, str]:
    """``agentgym serve env env=guess_number`` on a free port, up; (process, its ws:// URL)."""
    port = free_port()
    cmd = [sys.executable, "-m", "agentgym.cli", "serve", "env", "env=guess_number", f"port={port}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        try:
            if httpx.get(f"{url}/health", timeout=1).json() == {"status": "healthy"}:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    return proc, f"ws://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def served():
    proc, url = serve()
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.mark.parametrize(
    ("sig", "says"), [(signal.SIGKILL, "is gone"), (signal.SIGSTOP, "did not answer")]
)
def test_a_dead_or_frozen_env_server_is_an_env_error_in_seconds(sig, says):
    proc, url = serve()
    try:
        env = agentgym.make("remote", url=url, timeout=3)

        async def main():
            await env.areset(seed=0)
            proc.send_signal(sig)
            time.sleep(0.5)
            t0 = time.monotonic()
            with pytest.raises(agentgym.EnvError, match=says):
                await env.areset(seed=1)
            await env.aclose()  # closing on a dead socket never raises
            return time.monotonic() - t0

        assert asyncio.run(main()) < 10
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait(10)


def test_the_wire_protocol_as_openenv_clients_send_it(served):
    async def main():
        async with connect(served + "/ws") as ws:

            async def say(message):
                await ws.send(message if isinstance(message, str) else json.dumps(message))
                return json.loads(await ws.recv())

            reset = await say({"type": "reset", "data": {"seed": 7}})
            bad = await say("{not json")
            guess = {"name": "guess", "arguments": {"number": 50}}
            step = await say({"type": "step", "data": {"content": "", "tool_calls": [guess]}})
            state = await say({"type": "state"})
            unknown = await say({"type": "dance"})
            await ws.send(json.dumps({"type": "close"}))
            return reset, bad, step, state, unknown

    reset, bad, step, state, unknown = asyncio.run(main())
    assert reset["type"] == "observation" and reset["data"]["done"] is False
    obs = reset["data"]["observation"]
    assert (
        obs["tools"][0]["function"]["name"] == "guess"
        and "integer between" in obs["messages"][0]["content"]
    )
    assert bad == {"type": "error", "data": bad["data"]} and bad["data"]["code"] == "INVALID_JSON"
    assert step["type"] == "observation"  # the session went on after the bad message
    answer = step["data"]["observation"]["messages"][0]["content"]
    assert "too" in answer or "correct" in answer
    assert state["data"]["turn"] == 1 and state["data"]["env_id"] == "agentgym/guess_number-v0"
    assert unknown["type"] == "error"


def test_remote_plays_as_the_env_plays_in_process(served):
    oracle = ScriptedPolicy(GuessNumberEnv.oracle)
    settings = RolloutConfig(concurrency=4)

    def run(make):
        return asyncio.run(rollout(make, oracle, list(range(6)), 2, settings))

    here = run(lambda: agentgym.make("guess_number"))
    there = run(lambda: agentgym.make("remote", url=served))
    assert [t.reward for t in there] == [t.reward for t in here]
    assert [len(t.turns) for t in there] == [len(t.turns) for t in here]
    assert [t.messages[-1].content for t in there] == [t.messages[-1].content for t in here]
    assert all(t.success for t in there)


def test_eval_env_remote_from_the_cli(served, tmp_path):
    summary, trajs = eval_run(
        tmp_path, "env=remote", f"env.url={served}", "policy=scripted",
        "policy.script=agentgym.envs.guess_number:GuessNumberEnv.oracle", "episodes=4",
    )  # fmt: skip
    assert summary["success_rate"] == 1.0 and len(trajs) == 4
