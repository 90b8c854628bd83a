"""Run directories (``out=``): one process writes a run at a time, and a new run never
mixes with an old one.

``claim(out)`` holds an exclusive ``flock`` on ``out/.lock`` while the run works (the kernel
drops it when the process ends, even by SIGKILL, so a crash leaves no stale lock); a second
``agentgym`` on the same ``out`` fails at once with the first one's pid. No run is ever
moved or overwritten: a rerun goes on from the run in its folder, and a fresh run into a
folder that holds one is refused (``trainers/grpo/config.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from agentgym.errors import ConfigError


@contextlib.contextmanager
def claim(out: Path) -> Iterator[None]:
    """Hold ``out`` for this process (``ConfigError`` naming ``out`` if another holds it)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigError(
            "out",
            f"cannot write the run directory {out}: {exc.strerror}",
            "pass out=<a writable dir>",
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise ConfigError(
            "out",
            f"{out} is being written by another agentgym process (pid {holder})",
            "wait for it to finish, or pass another out=<dir>",
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
