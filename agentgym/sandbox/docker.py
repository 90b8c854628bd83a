"""The docker backend: a container per episode, isolated and bounded.

``docker run`` with ``--network none``, ``--memory``/``--memory-swap`` (no swap beyond the
limit), ``--cpus``, ``--pids-limit``, a non-root user, ``--read-only`` root, ``--cap-drop
ALL``, ``no-new-privileges``, tmpfs for ``/workspace`` and ``/tmp``, and ``--init`` (zombies
reaped). The container's own command is ``sleep <lifetime>`` with ``--rm``: even if the
process that started it is killed with SIGKILL, it removes itself when its lifetime ends, and
``agentgym sandbox gc`` removes it at once (every container carries the labels
``agentgym.sandbox`` and ``agentgym.owner=<host>:<pid>``; gc removes those of this host
whose owner is dead, or all with ``all=true``).

Commands run through the Docker Engine API on its unix socket (``engine.py``; through the CLI
where the engine is not on a local socket), wrapped in ``timeout -s KILL`` inside the container
so that a runaway command dies at its limit even if the client does. Starting and removing
containers goes through the CLI.
"""

from __future__ import annotations

import asyncio
import atexit
import io
import os
import shutil
import socket
import subprocess
import tarfile
from pathlib import Path

from agentgym.errors import SandboxError
from agentgym.sandbox.base import WORKSPACE, ExecResult, Limits, Sandbox, communicate
from agentgym.sandbox.engine import ContainerGone, engine_socket, exec_in

LABEL = "agentgym.sandbox"
_LIVE: set[str] = set()
"""Containers this process started and has not removed yet (removed at exit)."""


@atexit.register
def _remove_live() -> None:
    if _LIVE and shutil.which("docker"):
        subprocess.run(["docker", "rm", "-f", *_LIVE], capture_output=True, check=False)
        _LIVE.clear()


DEFAULT_IMAGE = "agentgym/swe:latest"


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


_REAP = (
    "keep=$(tr ' ' '\\n' </proc/1/task/1/children 2>/dev/null | sort -n | head -1); "
    '[ -n "$keep" ] && for d in /proc/[0-9]*; do q=${d#/proc/}; '
    'case " 1 $keep $$ " in *" $q "*) ;; *) kill -9 $q 2>/dev/null;; esac; done'
)


_OOM_KILLS = (
    "cat /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null"
    " | awk '$1==\"oom_kill\"{n+=$2} END{print n+0}'"
)
"""How many processes the container's out-of-memory killer has killed (cgroup v2 or v1)."""


async def docker(
    *args: str, stdin: bytes | None = None, timeout: float = 60, keep: int | None = None
) -> tuple[int, bytes, bytes, bool]:
    """Run the docker CLI; (exit code, stdout, stderr, whether output was cut at ``keep``)."""
    if shutil.which("docker") is None:
        raise SandboxError("the docker CLI is not installed; run the README's setup command")
    proc = await asyncio.create_subprocess_exec(
        "docker",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err, cut = await asyncio.wait_for(communicate(proc, stdin, keep), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out, err, cut


PING_TIMEOUT_S = 10.0
START_DAEMON = (
    "start it (`sudo systemctl start docker`; as root without systemd: `dockerd "
    "--storage-driver=overlay2 --iptables=false --bridge=none &`, as the README's setup "
    "command does), or point DOCKER_HOST at one that runs"
)


def check_daemon(image: str | None = None) -> None:
    """Refuse before any episode where the Docker daemon does not answer within
    ``PING_TIMEOUT_S`` (down, or frozen) or has no ``image``: a ``SandboxError`` naming the
    daemon and how to start it, instead of every episode failing one by one."""
    if shutil.which("docker") is None:
        raise SandboxError("the docker CLI is not installed; run the README's setup command")
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    ask = ["docker", "version", "--format", "{{.Server.Version}}"]
    try:
        done = subprocess.run(ask, capture_output=True, text=True, timeout=PING_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SandboxError(
            f"the Docker daemon at {where} did not answer within {PING_TIMEOUT_S:g} s (frozen "
            f"or overloaded): {START_DAEMON}"
        ) from None
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no answer"])[-1]
        raise SandboxError(f"the Docker daemon at {where} is not running ({why}): {START_DAEMON}")
    if (
        image is not None
        and subprocess.run(
            ["docker", "image", "inspect", image], capture_output=True, timeout=PING_TIMEOUT_S
        ).returncode
    ):
        raise SandboxError(
            f"the Docker daemon has no image {image!r}: build it with `agentgym sandbox build` "
            "(the README's setup command does)"
        )


class DockerSandbox(Sandbox):
    """A container from ``image`` (built by ``agentgym sandbox build``)."""

    def __init__(
        self,
        image: str = DEFAULT_IMAGE,
        limits: Limits | None = None,
        workdir: str = WORKSPACE,
        read_only: bool = True,
    ) -> None:
        """``workdir``/``read_only``: SWE-bench images keep their repository in ``/testbed``
        and need a writable root; ours use a tmpfs ``/workspace`` on a read-only root."""
        self.image, self.limits = image, limits or Limits()
        self.workdir, self.read_only = workdir, read_only
        self.id: str | None = None
        self._oom_kills = 0
        self.socket = engine_socket()
        """The Engine API's socket that execs go through; None: the CLI."""

    async def start(self) -> None:
        if self.id is not None:
            return
        lim = self.limits
        fs = (
            ["--user", "1000:1000", "--read-only",
             "--tmpfs", f"{WORKSPACE}:rw,exec,size={lim.workspace_mb}m,uid=1000,gid=1000,mode=755",
             "-e", f"HOME={WORKSPACE}/.home"]
            if self.read_only else []
        )  # fmt: skip
        code, out, err, _ = await docker(
            "run", "-d", "--rm", "--init",
            "--network", "none",
            "--memory", f"{lim.memory_mb}m", "--memory-swap", f"{lim.memory_mb}m",
            "--cpus", str(lim.cpus), "--pids-limit", str(lim.pids),
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            *fs,
            "--tmpfs", "/tmp:rw,exec,size=64m,mode=1777",
            "--label", f"{LABEL}=1", "--label", f"agentgym.owner={owner()}",
            "-w", self.workdir,
            self.image, "sleep", str(lim.lifetime_s),
        )  # fmt: skip
        if code != 0:
            raise SandboxError(f"docker run {self.image} failed: {err.decode().strip()}")
        self.id, self._oom_kills = out.decode().strip(), 0
        _LIVE.add(self.id)

    async def exec(
        self, command: str, timeout: float | None = None, stdin: bytes | None = None
    ) -> ExecResult:
        if self.id is None:
            await self.start()
        assert self.id is not None
        limit = timeout or self.limits.timeout_s
        keep = self.limits.output_bytes
        # timeout runs the command in a process group of its own; whatever is left in that
        # group when it ends (background jobs, a fork bomb) is killed with it, and then every
        # other process but init, the container's lifetime `sleep` (init's oldest child) and
        # this shell: a job that escaped the group with setsid does not outlive the call
        wrapped = (
            f"timeout -s KILL {limit:g} bash -c {_q(command)} <&0 & p=$!; wait $p; rc=$?; "
            f"kill -9 -- -$p 2>/dev/null; {_REAP}; exit $rc"
        )
        try:
            code, out, err, cut = await self._run(["bash", "-c", wrapped], stdin, keep, limit + 30)
        except TimeoutError:  # the command's own timeout did not answer: is the container?
            if not await self.healthy():
                raise SandboxError(
                    f"container {self.id[:12]} stopped answering (paused, or gone): a command "
                    f"of {limit:g} s got no reply in {limit + 30:g} s"
                ) from None
            return ExecResult(137, "", f"killed after {limit:g} s", timed_out=True)
        oom_killed = code == 137 and await self._oom_killed()
        return ExecResult(
            code,
            out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace"),
            timed_out=code == 137 and not oom_killed,
            truncated=cut,
            oom_killed=oom_killed,
        )

    async def _run(
        self,
        cmd: list[str],
        stdin: bytes | None = None,
        keep: int | None = None,
        timeout: float = 60,
    ) -> tuple[int, bytes, bytes, bool]:
        """Run ``cmd`` in the container; ``SandboxError`` if the container is gone,
        ``TimeoutError`` after ``timeout`` seconds."""
        assert self.id is not None
        if self.socket is not None:
            try:
                run = exec_in(self.socket, self.id, cmd, stdin, keep)
                return await asyncio.wait_for(run, timeout)
            except ContainerGone as exc:
                raise SandboxError(f"container {self.id[:12]} is gone: {exc}") from None
        args = ["exec", "-i"] if stdin is not None else ["exec"]
        code, out, err, cut = await docker(
            *args, self.id, *cmd, stdin=stdin, timeout=timeout, keep=keep
        )
        # the CLI's words for a dead container; the command may print them itself, so ask
        if (b"No such container" in err or b"is not running" in err) and not await self._alive():
            raise SandboxError(f"container {self.id[:12]} is gone: {err.decode().strip()}")
        return code, out, err, cut

    async def _oom_killed(self) -> bool:
        """Whether the out-of-memory killer struck since the last time we asked."""
        assert self.id is not None
        _, out, _, _ = await self._run(["sh", "-c", _OOM_KILLS])
        if not out.strip().isdigit():  # killed from outside: the exec itself died with it
            if not await self._alive():
                raise SandboxError(f"container {self.id[:12]} is gone (killed from outside)")
            return False
        kills = int(out.strip())
        struck, self._oom_kills = kills > self._oom_kills, kills
        return struck

    async def _alive(self) -> bool:
        assert self.id is not None
        code, out, _, _ = await docker("inspect", "-f", "{{.State.Running}}", self.id)
        return code == 0 and out.strip() == b"true"

    async def healthy(self) -> bool:
        if self.id is None:
            return False
        code, out, _, _ = await docker(
            "inspect", "-f", "{{.State.Running}} {{.State.Paused}}", self.id
        )
        return code == 0 and out.strip() == b"true false"

    async def copy_in(self, src: Path) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for path in sorted(Path(src).rglob("*")):
                tar.add(path, arcname=str(path.relative_to(src)), recursive=False)
        r = await self.exec(f"tar -x -C {self.workdir} -f -", stdin=buf.getvalue())
        if r.exit_code != 0:
            raise SandboxError(f"copying {src} into the sandbox failed: {r.stderr.strip()}")

    async def close(self) -> None:
        if self.id is not None:
            cid, self.id = self.id, None
            await docker("rm", "-f", cid)
            _LIVE.discard(cid)


def _q(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


async def gc(all_owners: bool = False) -> list[str]:
    """Remove agentgym containers whose owner process is dead (or all of them)."""
    _, out, _, _ = await docker(
        "ps", "-a", "--filter", f"label={LABEL}", "--format", '{{.ID}} {{.Label "agentgym.owner"}}'
    )
    host, doomed = socket.gethostname(), []
    for line in out.decode().splitlines():
        cid, _, who = line.partition(" ")
        h, _, pid = who.rpartition(":")
        if all_owners or (h == host and not (pid.isdigit() and _alive(int(pid)))):
            doomed.append(cid)
    if doomed:
        await docker("rm", "-f", *doomed)
    return doomed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
