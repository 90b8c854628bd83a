"""The local (development) sandbox: bounds by rlimits and a wall-time limit."""

import asyncio

import pytest

from agentgym.sandbox import Limits, LocalSandbox


async def in_box(*commands, **kw):
    async with LocalSandbox(Limits(memory_mb=256, timeout_s=5)) as box:
        return [await box.exec(c, **kw) for c in commands]


def test_warns_loudly_and_runs():
    with pytest.warns(UserWarning, match="development only"):
        [r] = asyncio.run(in_box("echo hi > f && cat f"))
    assert r.stdout == "hi\n"


@pytest.mark.filterwarnings("ignore:LocalSandbox")
def test_memory_and_time_bounds():
    [mem, loop] = asyncio.run(
        in_box('python3 -c "x = bytearray(2 * 1024**3)"', "sleep 30", timeout=1)
    )
    assert mem.exit_code != 0 and "MemoryError" in mem.stderr
    assert loop.timed_out


@pytest.mark.filterwarnings("ignore:LocalSandbox")
def test_copy_out_and_reset(tmp_path):
    async def go():
        async with LocalSandbox() as box:
            await box.write("out/a.txt", b"A")
            await box.copy_out("out", tmp_path)
            await box.reset()
            return await box.exec("ls -A | wc -l")

    r = asyncio.run(go())
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"A" and r.stdout.strip() == "0"


@pytest.mark.filterwarnings("ignore:LocalSandbox")
def test_setup_writes_files_and_runs_the_command_in_one_exec():
    async def go():
        async with LocalSandbox() as box:
            calls = []
            exec_ = box.exec

            async def counted(*a, **kw):
                calls.append(a)
                return await exec_(*a, **kw)

            box.exec = counted
            files = {"pkg/mod.py": "X = 1\n", "README": "héllo\n"}
            r = await box.setup(files, "cat pkg/mod.py README && ls -A | sort", timeout=30)
            return r, calls

    r, calls = asyncio.run(go())
    assert r.exit_code == 0 and r.stdout == "X = 1\nhéllo\nREADME\npkg\n", r.output
    assert len(calls) == 1
