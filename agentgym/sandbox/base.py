"""The sandbox interface: where code a model wrote runs.

A ``Sandbox`` is started once per episode (or taken warm from a ``SandboxPool``), then used
through a handful of async calls: ``exec`` a shell command with a timeout, ``read``/``write``
files, ``copy_in`` a directory, and ``close``. Every call is bounded: the command's wall time
(killed at the limit), its output (cut at ``output_bytes``), and for the docker backend the
container's memory, CPUs, processes and lifetime, with no network.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from pydantic import BaseModel, ConfigDict, Field


class Limits(BaseModel):
    """Bounds of a sandbox (``sandbox.*`` in configs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    memory_mb: int = Field(1024, ge=64, description="RAM (and swap) of the whole sandbox")
    cpus: float = Field(1.0, gt=0, description="CPUs the sandbox may use")
    pids: int = Field(256, ge=16, description="most processes and threads at once")
    timeout_s: float = Field(30.0, gt=0, description="default wall time of one exec")
    lifetime_s: int = Field(3600, ge=60, description="a container removes itself after this")
    output_bytes: int = Field(64_000, ge=1024, description="stdout/stderr kept per exec")
    workspace_mb: int = Field(256, ge=16, description="size of the writable /workspace")


@dataclass(frozen=True)
class ExecResult:
    """What a command did. ``exit_code`` is 137 when it was killed at the time limit
    (``timed_out``) or by the out-of-memory killer (``oom_killed``)."""

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    truncated: bool = False
    oom_killed: bool = False

    @property
    def output(self) -> str:
        """stdout then stderr, as a terminal would show them."""
        return self.stdout + (("\n" if self.stdout else "") + self.stderr if self.stderr else "")


WORKSPACE = "/workspace"


class Sandbox(abc.ABC):
    """One isolated workspace. Paths are relative to the workspace unless absolute."""

    limits: Limits
    workdir: str
    """The workspace: where commands run and relative paths point."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Create the sandbox (idempotent)."""

    async def healthy(self) -> bool:
        """Whether the started sandbox can run commands now (a container that died or was
        paused cannot)."""
        return True

    @abc.abstractmethod
    async def exec(
        self, command: str, timeout: float | None = None, stdin: bytes | None = None
    ) -> ExecResult:
        """Run ``command`` with ``bash -c`` in the workspace, as the unprivileged user."""

    @abc.abstractmethod
    async def copy_in(self, src: Path) -> None:
        """Copy the contents of the local directory ``src`` into the workspace."""

    async def setup(
        self, files: Mapping[str, str | bytes], command: str, timeout: float
    ) -> ExecResult:
        """Write ``files`` (workspace path -> text or bytes) and run ``command`` after them, in
        one call: an episode's reset costs one exec, not one to copy and one to set up."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for path, text in sorted(files.items()):
                data = text.encode() if isinstance(text, str) else text
                info = tarfile.TarInfo(path)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
        unpack = f"tar -x -C {_q(self.workdir)} -f - && " if files else ""
        return await self.exec(f"{unpack}{command}", timeout=timeout, stdin=buf.getvalue())

    async def copy_out(self, src: str, dst: Path) -> None:
        """Copy ``src`` (a file or folder of the workspace) into the local folder ``dst``."""
        r = await self.exec(f"tar -c -- {_q(src)} | base64 -w0", timeout=120)
        if r.exit_code != 0 or not r.stdout:
            raise FileNotFoundError(f"{src}: {r.stderr.strip()}")
        if r.truncated:  # the archive travels as output, which is capped
            raise ValueError(
                f"{src} is larger than the sandbox's output cap once archived "
                f"(limits.output_bytes={self.limits.output_bytes}); raise it to copy this out"
            )
        dst.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(base64.b64decode(r.stdout)), mode="r") as tar:
            tar.extractall(dst, filter="data")

    async def reset(self) -> None:
        """Empty the workspace and end every process a command left behind."""
        await self.exec("find . -mindepth 1 -delete 2>/dev/null; true", timeout=60)

    @abc.abstractmethod
    async def close(self) -> None:
        """Destroy the sandbox and everything in it (idempotent)."""

    async def read(self, path: str, max_bytes: int = 1_000_000) -> bytes:
        """The first ``max_bytes`` of a file (``FileNotFoundError`` if there is none)."""
        r = await self.exec(f"test -f {_q(path)} && head -c {max_bytes} -- {_q(path)}")
        if r.exit_code != 0:
            raise FileNotFoundError(path)
        return r.stdout.encode("utf-8", "surrogateescape")

    async def write(self, path: str, data: bytes) -> None:
        """Create or replace a file (parents created)."""
        r = await self.exec(f'mkdir -p "$(dirname {_q(path)})" && cat > {_q(path)}', stdin=data)
        if r.exit_code != 0:
            raise PermissionError(f"cannot write {path}: {r.stderr.strip()}")

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def communicate(
    proc: asyncio.subprocess.Process, stdin: bytes | None, keep: int | None
) -> tuple[bytes, bytes, bool]:
    """Feed ``stdin`` and read stdout and stderr to their end, keeping the first ``keep``
    bytes of each (all with None): a flood of output costs CPU, never memory.

    Returns (stdout, stderr, whether either was cut).
    """

    async def feed() -> None:
        if proc.stdin is None:
            return
        try:
            if stdin:
                proc.stdin.write(stdin)
                await proc.stdin.drain()
            proc.stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            pass

    async def drain(stream: asyncio.StreamReader | None) -> tuple[bytes, bool]:
        buf, cut = bytearray(), False
        while stream is not None and (chunk := await stream.read(1 << 16)):
            room = len(chunk) if keep is None else max(keep - len(buf), 0)
            buf += chunk[:room]
            cut = cut or len(chunk) > room
        return bytes(buf), cut

    _, (out, cut_out), (err, cut_err) = await asyncio.gather(
        feed(), drain(proc.stdout), drain(proc.stderr)
    )
    await proc.wait()
    return out, err, cut_out or cut_err


def _q(path: str) -> str:
    return "'" + path.replace("'", "'\\''") + "'"
