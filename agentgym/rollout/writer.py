"""Trajectories on disk: JSONL, one episode a line, written to the OS as each one ends.

A run killed at any moment leaves whole lines plus at most one partial line; reopening the
file drops the partial line and reports which (task, sample) keys are done, so a rerun skips
them and loses only the episodes that were in flight. An episode that failed for the
infrastructure's sake (``stop_reason="error"``: a dead server, container or engine) is not
done: reopening moves its row to ``trajectories.failed.jsonl`` beside the file (kept, for the
record) and a rerun plays it again, so an interrupted evaluation completes to the episodes
asked for.

Each line reaches the kernel before ``write`` returns (a killed process loses nothing
written); a background thread fsyncs whatever was written since its last fsync, so a machine
crash loses at most the last few milliseconds of episodes, and the event loop never waits on
the disk (an fsync per episode cost 8 ms of a 160 ms training step here, and is far slower
on the network file systems of clusters). ``close`` fsyncs the rest.

Images (screenshots) are stored once each, as files in ``images/`` beside the JSONL, named by
their content hash; the lines refer to them by relative path (a group's G episodes of one
screenshot write it once), and reading a file back gives their full paths.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from agentgym.types import Trajectory
from agentgym.vision import image_key

IMAGES = "images"
"""The folder, beside a trajectories file, of the images its episodes show."""


def read_trajectories(path: str | Path) -> Iterator[Trajectory]:
    """The complete trajectories in a JSONL file (a trailing partial line is skipped); stored
    images come back as the full paths of their files."""
    folder = Path(path).parent
    with open(path, "rb") as f:
        for line in f:
            if line.endswith(b"\n"):
                traj = Trajectory.model_validate_json(line)
                shows = traj.images or any(m.images for m in traj.messages)
                yield _resolve(traj, folder) if shows else traj


def _resolve(traj: Trajectory, folder: Path) -> Trajectory:
    def full(ref: str) -> str:
        return str(folder / ref) if ref.startswith(IMAGES + "/") else ref

    for m in traj.messages:
        m.images = [full(r) for r in m.images]
    traj.images = [full(r) for r in traj.images]
    return traj


def _stored(data: dict, folder: Path) -> dict:
    """``data`` (a dumped trajectory) with every data-URL image written to ``folder`` (once)
    and replaced by its relative path."""

    def store(url: str) -> str:
        if not url.startswith("data:"):
            return url
        head, payload = url.split(",", 1)
        ext = head.removeprefix("data:image/").split(";")[0].replace("jpeg", "jpg") or "png"
        name = f"{IMAGES}/{image_key(url)}.{ext}"
        if not (folder / name).exists():
            tmp = folder / f"{name}.tmp"
            tmp.write_bytes(base64.b64decode(payload))
            tmp.rename(folder / name)
        return name

    for m in data["messages"]:
        for part in m["content"] if isinstance(m["content"], list) else []:
            if part.get("type") == "image_url":
                part["image_url"]["url"] = store(part["image_url"]["url"])
    data["images"] = [store(u) for u in data["images"]]
    return data


class TrajectoryWriter:
    """Appends trajectories to ``path`` durably; knows which episodes are already done."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.done: set[tuple[int, int]] = set()
        self.previous: list[Trajectory] = []
        if self.path.exists():
            self._truncate_partial_line()
            self.previous = self._set_aside_failed(list(read_trajectories(self.path)))
            self.done = {t.key for t in self.previous}
        self._file = open(self.path, "ab")  # noqa: SIM115 - closed in close()
        self._written = threading.Event()
        self._closing = False
        self._syncer = threading.Thread(target=self._sync_loop, name="agentgym-fsync", daemon=True)
        self._syncer.start()

    def _truncate_partial_line(self) -> None:
        data = self.path.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            with open(self.path, "r+b") as f:
                f.truncate(keep)

    def _set_aside_failed(self, trajs: list[Trajectory]) -> list[Trajectory]:
        """The finished episodes; failed rows (and any row a later one of its key replaced)
        appended to the ``.failed`` file, and the main file rewritten without them."""
        latest = {t.key: t for t in trajs}
        kept = [t for t in latest.values() if t.stop_reason != "error"]
        if len(kept) == len(trajs):
            return trajs
        failed = [t for t in trajs if t.stop_reason == "error"]
        with open(self.path.with_suffix(".failed.jsonl"), "ab") as f:
            f.writelines(t.model_dump_json().encode() + b"\n" for t in failed)
            f.flush()
            os.fsync(f.fileno())
        tmp = self.path.with_suffix(".tmp")
        lines = self.path.read_bytes().splitlines(keepends=True)
        rows = {t.key: line for t, line in zip(trajs, lines, strict=True)}  # the latest line
        tmp.write_bytes(b"".join(rows[t.key] for t in kept))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.path)  # atomic: a crash here leaves the old file or the new
        return kept

    def write(self, trajectory: Trajectory) -> None:
        """Append one trajectory; it is in the OS when this returns, on disk soon after."""
        if trajectory.images or any(m.images for m in trajectory.messages):
            (self.path.parent / IMAGES).mkdir(exist_ok=True)
            data = _stored(trajectory.model_dump(mode="json"), self.path.parent)
            line = json.dumps(data, ensure_ascii=False).encode()
        else:
            line = trajectory.model_dump_json().encode()
        self._file.write(line + b"\n")
        self._file.flush()
        self.done.add(trajectory.key)
        self._written.set()

    def _sync_loop(self) -> None:
        while True:
            self._written.wait()
            self._written.clear()
            if self._closing:
                return
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Stop the fsync thread, fsync what is left and close the file."""
        if self._file.closed:
            return
        self._closing = True
        self._written.set()
        self._syncer.join()
        os.fsync(self._file.fileno())
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
