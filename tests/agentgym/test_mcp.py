"""MCP servers' tools as env tools, against a real MCP server process (stdio and HTTP)."""

import asyncio
import subprocess
import sys
import time

import httpx
import psutil
import pytest

import agentgym
from agentgym.errors import ConfigError, EnvError
from tests.conftest import free_port

STDIO = {"command": [sys.executable, "-m", "tests.agentgym.mcp_server"], "timeout": 2}


def call(name, **arguments):
    import json

    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


async def play(servers, *actions):
    env = agentgym.make("guess_number", mcp_servers=servers)
    try:
        obs, _ = await env.areset(seed=0)
        steps = [await env.astep(a) for a in actions]
        return obs, steps
    finally:
        await env.aclose()


def test_stdio_tools_join_the_env_with_their_schemas_and_the_same_error_contract():
    obs, steps = asyncio.run(
        play(
            [STDIO],
            call("add", a=2, b=3),
            call("add", a="two", b=3),
            call("fail", reason="broken"),
            call("slow", seconds=30),
            "".join(call("add", a=i, b=i) for i in range(9)),
        )
    )
    tools = {t.name: t for t in obs.tools}
    assert set(tools) == {"guess", "add", "fail", "slow"}
    assert tools["add"].parameters["properties"]["a"]["type"] == "integer"
    assert set(tools["add"].parameters["required"]) == {"a", "b"}
    texts = [s[0].messages[0].content for s in steps]
    infos = [s[4] for s in steps]
    assert texts[0] == "5" and not infos[0]["format_error"]
    assert "invalid arguments for 'add'" in texts[1] and infos[1]["format_error"]  # not sent
    assert texts[2].startswith("Error") and infos[2]["tool_errors"] == 1
    assert "longer than 2 s" in texts[3]
    assert infos[4]["format_error"]  # 9 calls: past the per-turn cap of 8
    assert "were not run" in steps[4][0].messages[0].content


def test_a_streamable_http_server_works_alike():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.agentgym.mcp_server", "http", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        _, [step] = asyncio.run(
            play([{"url": f"http://127.0.0.1:{port}/mcp"}], call("add", a=40, b=2))
        )
        assert step[0].messages[0].content == "42"
    finally:
        proc.terminate()
        proc.wait(10)


def test_closing_the_env_stops_the_server_process():
    me = psutil.Process()

    async def main():
        env = agentgym.make("guess_number", mcp_servers=[STDIO])
        await env.areset(seed=0)
        during = [p.cmdline() for p in me.children(recursive=True)]
        await env.aclose()
        return during

    during = asyncio.run(main())
    assert any("tests.agentgym.mcp_server" in " ".join(c) for c in during)
    time.sleep(0.5)
    assert not any(
        "tests.agentgym.mcp_server" in " ".join(p.cmdline()) for p in me.children(recursive=True)
    )


def test_bad_server_configs_fail_before_work_and_a_dead_server_at_reset(tmp_path):
    with pytest.raises(ConfigError, match=r"env\.mcp_servers.*command.*or url"):
        agentgym.make("guess_number", mcp_servers=[{}])
    with pytest.raises(ConfigError, match=r"env\.mcp_servers"):
        agentgym.make("guess_number", mcp_servers={"url": "http://x"})
    from agentgym.cli import main

    assert main(["eval", "env=guess_number", "env.mcp_servers=[{port: 1}]", f"out={tmp_path}"]) == 2
    with pytest.raises(EnvError, match="did not start"):
        asyncio.run(play([{"command": [str(tmp_path / "no-such-server")]}]))


def test_a_server_that_dies_fails_the_episode_naming_it_and_the_next_reset_restarts_it():
    def server_processes():
        return [
            p
            for p in psutil.Process().children(recursive=True)
            if "tests.agentgym.mcp_server" in " ".join(p.cmdline())
        ]

    async def main():
        env = agentgym.make("guess_number", mcp_servers=[STDIO])
        try:
            await env.areset(seed=0)
            [first] = server_processes()
            first.kill()
            first.wait(10)
            with pytest.raises(EnvError, match=r"MCP server .*mcp_server' is gone during 'add'"):
                await env.astep(call("add", a=1, b=2))
            await env.areset(seed=1)  # a new server, and its tools work again
            assert [p.pid for p in server_processes()] != [first.pid]
            return await env.astep(call("add", a=1, b=2))
        finally:
            await env.aclose()

    step = asyncio.run(main())
    assert step[0].messages[0].content == "3"
