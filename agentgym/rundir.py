"""Run directories (``out=``): one process writes a run at a time, and a new run never
mixes with an old one.

``claim(out)`` holds an exclusive ``flock`` on ``out/.lock`` while the run works (the kernel
drops it when the process ends, even by SIGKILL, so a crash leaves no stale lock); a second
``agentgym`` on the same ``out`` fails at once with the first one's pid. ``set_aside(out)``
moves a previous run's files to ``<out>.previous`` (one generation kept) before a fresh
run starts there.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
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


def set_aside(out: Path, artefacts: tuple[str, ...]) -> Path | None:
    """Move the ``artefacts`` (names inside ``out``) that exist to ``<out>.previous``,
    replacing what was there; return that folder, or None if there was nothing to move."""
    found = [out / name for name in artefacts if (out / name).exists()]
    if not found:
        return None
    previous = out.with_name(out.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    previous.mkdir(parents=True)
    for path in found:
        shutil.move(path, previous / path.name)
    return previous
