"""The local backend, for development only: a temp dir and a subprocess with rlimits.

It bounds memory (RLIMIT_AS), CPU seconds, file size and wall time (the process group is
killed at the limit), but it does NOT isolate the network, the file system outside the
workspace or other processes of the user. Never train on untrusted policies with it.
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import signal
import tempfile
import warnings
from pathlib import Path

from agentgym.sandbox.base import ExecResult, Limits, Sandbox, communicate

WARNING = (
    "LocalSandbox is for development only: no network, file-system or process isolation. "
    "Use the docker backend for model-written code."
)


class LocalSandbox(Sandbox):
    """A temp directory; commands run in it with rlimits and a wall-time limit."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.root: Path | None = None

    @property
    def workdir(self) -> str:  # type: ignore[override]
        return str(self.root or "")

    async def start(self) -> None:
        if self.root is None:
            warnings.warn(WARNING, stacklevel=2)
            self.root = Path(tempfile.mkdtemp(prefix="agentgym-sandbox-"))

    def _limit(self) -> None:  # runs in the child before exec
        mem = self.limits.memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        cpu = int(self.limits.timeout_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        size = self.limits.workspace_mb * 2**20
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    async def exec(
        self, command: str, timeout: float | None = None, stdin: bytes | None = None
    ) -> ExecResult:
        await self.start()
        assert self.root is not None
        keep = self.limits.output_bytes
        proc = await asyncio.create_subprocess_exec(
            "bash", "-c", command,
            cwd=self.root,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.root)},
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=self._limit,
        )  # fmt: skip
        try:
            out, err, cut = await asyncio.wait_for(
                communicate(proc, stdin, keep), timeout or self.limits.timeout_s
            )
        except TimeoutError:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            return ExecResult(137, "", "killed at the time limit", timed_out=True)
        return ExecResult(
            proc.returncode or 0,
            out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace"),
            truncated=cut,
        )

    async def copy_in(self, src: Path) -> None:
        await self.start()
        assert self.root is not None
        shutil.copytree(src, self.root, dirs_exist_ok=True)

    async def read(self, path: str, max_bytes: int = 1_000_000) -> bytes:
        await self.start()
        assert self.root is not None
        target = self.root / path
        if not target.is_file():
            raise FileNotFoundError(path)
        with open(target, "rb") as f:
            return f.read(max_bytes)

    async def close(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
