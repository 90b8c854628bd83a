"""env=openenv plays an environment written with openenv-core's own server classes
(``openenv_countdown.py``) through openenv-core's own client; and the other way, ``agentgym
serve env`` is driven by openenv-core's own client."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time

import pytest

from agentgym.cli import main
from tests.conftest import free_port

pytest.importorskip("openenv.core")


def _call(name: str, **arguments: object) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def says_it(messages, info, rng) -> str:
    """Asks for a hint first (a second turn), then says the number of the prompt."""
    if len(messages) < 3:
        return _call("hint")
    return _call("say", number=int(re.findall(r"\d+", messages[0].content)[0]))


def says_one(messages, info, rng) -> str:
    return _call("say", number=1)


def says_a_word(messages, info, rng) -> str:
    """Arguments that do not fit the server's schema: feedback, never sent."""
    return _call("say", number="many") if len(messages) < 3 else _call("say", number=0)


@pytest.fixture(scope="module")
def served():
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "tests.envs.openenv_countdown:app", "--port",
               str(port), "--log-level", "warning"]  # fmt: skip
    return [f"env.url=http://127.0.0.1:{port}", f"env.command={json.dumps(command)}"]


def _eval(out, served, script, *extra):
    script = f"policy.script=tests.envs.test_openenv:{script}"
    code = main(["eval", "env=openenv", *served, "policy=scripted", script, f"out={out}", *extra])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = [json.loads(x) for x in (out / "trajectories.jsonl").read_text().splitlines()]
    return summary, rows


def test_its_tools_rewards_and_end_are_the_episodes(served, tmp_path):
    good, rows = _eval(tmp_path / "good", served, "says_it", "episodes=8")
    assert good["success_rate"] == 1.0 and good["mean_reward"] == 1.0
    assert all(len(r["turns"]) == 2 for r in rows)  # hint, then say
    tools = {t["function"]["name"] for t in rows[0]["tools"]}
    assert tools == {"say", "hint"}  # the server's own, with its schemas
    bad, _ = _eval(tmp_path / "bad", served, "says_one", "episodes=8")
    assert bad["mean_reward"] < 0.3  # only a target of 1 pays
    word, rows = _eval(tmp_path / "word", served, "says_a_word", "episodes=2")
    assert word["mean_reward"] < 0 and word["failed_episodes"] == 0  # a format error's penalty
    feedback = rows[0]["messages"][2]["content"]
    assert "invalid arguments for 'say'" in feedback, feedback


def test_held_out_tasks_are_other_seeds_and_the_server_stops_with_the_run(served, tmp_path):
    _, train = _eval(tmp_path / "t", served, "says_it", "episodes=4", "rollout.split=train")
    _, held = _eval(tmp_path / "e", served, "says_it", "episodes=4", "rollout.split=eval")
    prompts = {r["messages"][0]["content"] for r in train}
    assert prompts.isdisjoint(r["messages"][0]["content"] for r in held)
    port = int(served[0].rsplit(":", 1)[1])
    time.sleep(0.5)
    with pytest.raises(OSError):  # the command's server went with the last env
        __import__("socket").create_connection(("127.0.0.1", port), timeout=1)


def test_nothing_listening_fails_before_any_episode(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["eval", "env=openenv", f"env.url={url}", f"out={tmp_path}/r"]) == 2
    err = capsys.readouterr().err
    assert f"no OpenEnv server answers at {url}" in err and "env.command" in err
    assert not (tmp_path / "r").exists()


def test_agentgym_serve_env_is_driven_by_openenvs_own_client():
    from openenv.core.generic_client import GenericEnvClient

    from agentgym.envs.guess_number import GuessNumberEnv

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "agentgym.cli", "serve", "env", "env=guess_number",
         f"port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip

    async def play() -> tuple[float, bool, dict]:
        async with GenericEnvClient(base_url=f"http://127.0.0.1:{port}") as env:
            first = await env.reset(seed=3)
            messages = first.observation["messages"]
            oracle = GuessNumberEnv.oracle
            from agentgym.types import Message

            shown, info = [Message(**m) for m in messages], first.observation["info"]
            result = await env.step({"content": oracle(shown, info, None)})
            while not result.done:
                shown += [Message(**m) for m in result.observation["messages"]]
                result = await env.step({"content": oracle(shown, info, None)})
            return float(result.reward or 0.0), result.done, await env.state()

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                reward, done, state = asyncio.run(play())
                break
            except (OSError, ConnectionError):
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.3)
    finally:
        server.terminate()
        server.wait(10)
    assert done and reward > 0 and state["env_id"] == "agentgym/guess_number-v0"


def test_the_reward_gate_runs_on_it(served, capsys):
    assert main(["check", "env=openenv", *served, "tasks=4"]) == 0
    assert "the reward passed its check" in capsys.readouterr().out
