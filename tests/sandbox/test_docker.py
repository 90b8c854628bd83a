"""The docker sandbox holds model-written code: each bound is tested against a real container."""

import asyncio
import subprocess
import sys
import time
import tracemalloc

import pytest

from agentgym.cli import main
from agentgym.sandbox import DockerSandbox, Limits, SandboxPool, gc
from tests.conftest import sandbox_containers

pytestmark = pytest.mark.docker
LIMITS = Limits(memory_mb=256, pids=64, timeout_s=5)


def run(coro):
    return asyncio.run(coro)


async def in_box(*commands, limits=LIMITS, **kw):
    async with DockerSandbox(limits=limits) as box:
        return [await box.exec(c, **kw) for c in commands]


def test_no_network():
    [r] = run(in_box("python3 -c \"import socket; socket.create_connection(('1.1.1.1', 53), 3)\""))
    assert r.exit_code != 0 and "unreachable" in r.stderr.lower()


def test_memory_bound_kills_inside_and_host_is_fine():
    [r, after] = run(in_box('python3 -c "x = bytearray(10 * 1024**3)"; echo "rc=$?"', "echo alive"))
    assert "rc=137" in r.stdout or "MemoryError" in r.stderr
    assert after.stdout.strip() == "alive"


def test_an_out_of_memory_kill_is_reported_as_such_not_as_a_timeout():
    grow = 'python3 -c "x = bytearray(10 * 1024**3)"'
    [oom, slow, oom2] = run(in_box(grow, "sleep 5", grow, timeout=2))
    assert oom.exit_code == 137 and oom.oom_killed and not oom.timed_out
    assert slow.timed_out and not slow.oom_killed
    assert oom2.oom_killed  # counted per call, not once per container


def test_an_output_flood_is_cut_while_read_not_buffered():
    tracemalloc.start()
    try:
        [r] = run(in_box("head -c 300000000 /dev/zero; echo tail >&2", timeout=60))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.truncated and len(r.stdout) == LIMITS.output_bytes and r.stderr == "tail\n"
    assert peak < 30 * 2**20, f"{peak / 2**20:.0f} MiB held for 300 MB of output"


def test_fork_bomb_is_contained():
    bomb = "bomb() { bomb | bomb & }; bomb; sleep 2; echo done"
    [r, after] = run(in_box(bomb, "echo alive", timeout=4))
    assert after.stdout.strip() == "alive"
    assert "fork" in r.stderr.lower() or r.timed_out


def test_infinite_loop_killed_at_the_time_limit():
    t = time.perf_counter()
    [r] = run(in_box("while true; do :; done", timeout=1.5))
    assert r.timed_out and r.exit_code == 137 and time.perf_counter() - t < 10


def test_writes_outside_the_workspace_fail():
    [r, ok] = run(
        in_box("touch /etc/x /usr/x /home/x 2>&1; echo $?", "touch /workspace/x && echo ok")
    )
    assert "Read-only file system" in r.stdout and ok.stdout.strip() == "ok"


def test_rm_rf_root_leaves_host_and_next_episode_intact(tmp_path):
    marker = tmp_path / "host-file"
    marker.write_text("still here")
    [r] = run(in_box("rm -rf --no-preserve-root / 2>/dev/null; ls /usr/bin | wc -l"))
    assert int(r.stdout.strip()) > 50  # read-only root: nothing of the image went
    assert marker.read_text() == "still here"
    [r] = run(in_box("python3 -c 'print(1 + 1)'"))
    assert r.stdout.strip() == "2"


def test_output_is_capped():
    [r] = run(in_box("yes x | head -c 5000000", limits=Limits(output_bytes=10_000)))
    assert r.truncated and len(r.stdout) == 10_000


def test_read_write_and_copy_in(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("print('hi')\n")

    async def go():
        async with DockerSandbox(limits=LIMITS) as box:
            await box.copy_in(tmp_path)
            await box.write("deep/dir/b.txt", b"bytes\n")
            return await box.exec("python3 pkg/a.py"), await box.read("deep/dir/b.txt")

    r, data = run(go())
    assert r.stdout == "hi\n" and data == b"bytes\n"


def test_two_hundred_episodes_with_kills_leave_no_container():
    async def episode(pool, i):
        box = await pool.acquire()
        try:
            if i % 4 == 0:  # killed mid-command
                await asyncio.wait_for(box.exec("sleep 30"), 0.2)
            else:
                await box.exec("echo ok")
        except TimeoutError:
            pass
        finally:
            await pool.release(box)

    async def go():
        pool = SandboxPool(lambda: DockerSandbox(limits=LIMITS), size=4)
        sem = asyncio.Semaphore(8)

        async def bounded(i):
            async with sem:
                await episode(pool, i)

        try:
            await asyncio.gather(*(bounded(i) for i in range(200)))
        finally:
            await pool.close()

    run(go())
    assert sandbox_containers() == []


def test_gc_removes_containers_of_a_killed_parent(capsys):
    code = (
        "import asyncio, os, sys\n"
        "from agentgym.sandbox import DockerSandbox\n"
        "async def go():\n"
        "    box = DockerSandbox(); await box.start(); print(box.id, flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(go())\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    cid = proc.stdout.readline().strip()
    proc.kill()  # SIGKILL: no cleanup can run
    proc.wait()
    assert any(cid.startswith(c) for c in sandbox_containers())
    assert main(["sandbox", "gc"]) == 0
    assert not any(cid.startswith(c) for c in sandbox_containers())
    assert run(gc()) == []


def test_copy_out_and_reset(tmp_path):
    async def go():
        async with DockerSandbox(limits=LIMITS) as box:
            await box.write("out/a.txt", b"A")
            await box.copy_out("out", tmp_path)
            await box.exec("(sleep 100 &); touch b")
            await box.reset()
            return await box.exec("ls -A | wc -l")

    r = run(go())
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"A" and r.stdout.strip() == "0"


def test_a_process_that_escapes_with_setsid_does_not_outlive_its_call():
    count = (
        "for d in /proc/[0-9]*; do tr '\\0' ' ' < $d/cmdline; echo; done 2>/dev/null"
        " | grep -c '^sleep 30[0-9]' || true"
    )
    escape = "setsid sleep 301 & setsid sh -c 'sleep 302 &' ; nohup sleep 303 >/dev/null 2>&1 &"
    [_, survivors, alive] = run(in_box(escape, count, "echo alive"))
    assert survivors.stdout.strip() == "0", survivors
    assert alive.stdout.strip() == "alive"  # the container itself lives on


def test_the_pool_replaces_a_warm_container_that_died_or_was_paused():
    async def go():
        pool = SandboxPool(lambda: DockerSandbox(limits=LIMITS), size=2)
        try:
            first = await pool.acquire()  # the pool warms two more meanwhile
            await pool.release(first)
            while pool._ready.qsize() < 2:
                await asyncio.sleep(0.2)
            paused, killed = list(pool._ready._queue)  # type: ignore[attr-defined]
            subprocess.run(["docker", "pause", paused.id], check=True, capture_output=True)
            subprocess.run(["docker", "kill", killed.id], check=True, capture_output=True)
            box = await pool.acquire()
            assert box not in (paused, killed)
            assert (await box.exec("echo alive")).stdout.strip() == "alive"
            await pool.release(box)
        finally:
            await pool.close()

    run(go())
    assert sandbox_containers() == []


def test_a_container_killed_mid_command_is_a_sandbox_error_saying_so():
    from agentgym.errors import SandboxError

    async def go():
        async with DockerSandbox(limits=LIMITS) as box:
            await box.exec("true")
            running = asyncio.create_task(box.exec("sleep 4"))
            await asyncio.sleep(1)
            subprocess.run(["docker", "kill", box.id], check=True, capture_output=True)
            with pytest.raises(SandboxError, match="is gone"):
                await running

    run(go())
