"""Trajectories on disk: JSONL, one episode a line, flushed and fsync'd as each one ends.

A run killed at any moment leaves whole lines plus at most one partial line; reopening the
file drops the partial line and reports which (task, sample) keys are done, so a rerun skips
them and loses only the episodes that were in flight.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from agentgym.types import Trajectory


def read_trajectories(path: str | Path) -> Iterator[Trajectory]:
    """The complete trajectories in a JSONL file (a trailing partial line is skipped)."""
    with open(path, "rb") as f:
        for line in f:
            if line.endswith(b"\n"):
                yield Trajectory.model_validate_json(line)


class TrajectoryWriter:
    """Appends trajectories to ``path`` durably; knows which episodes are already done."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.done: set[tuple[int, int]] = set()
        self.previous: list[Trajectory] = []
        if self.path.exists():
            self._truncate_partial_line()
            self.previous = list(read_trajectories(self.path))
            self.done = {t.key for t in self.previous}
        self._file = open(self.path, "ab")  # noqa: SIM115 - closed in close()

    def _truncate_partial_line(self) -> None:
        data = self.path.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            with open(self.path, "r+b") as f:
                f.truncate(keep)

    def write(self, trajectory: Trajectory) -> None:
        """Append one trajectory and make it durable before returning."""
        self._file.write(trajectory.model_dump_json().encode() + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.done.add(trajectory.key)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
