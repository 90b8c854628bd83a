"""Checkpoints on a disk that fills up: the error says so, and the previous one is intact."""

from __future__ import annotations

import os
import subprocess

import pytest

from agentgym.errors import CheckpointError
from agentgym.trainers import checkpoint
from agentgym.trainers.config import LearnerConfig
from agentgym.trainers.learner import Learner


@pytest.fixture
def small_disk(tmp_path):
    """A 24 MiB tmpfs (root only)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)],
                          capture_output=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_says_so_and_keeps_the_previous_checkpoint(tiny_model, small_disk):
    learner = Learner(str(tiny_model), LearnerConfig(), device="cpu")
    root = small_disk / "checkpoints"
    first = checkpoint.save(root, 1, learner, tiny_model, {"seed": 0})
    used = sum(f.stat().st_size for f in first.rglob("*") if f.is_file())
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    (small_disk / "filler").write_bytes(b"\0" * max(0, free - used // 2))  # half a checkpoint
    with pytest.raises(CheckpointError, match=r"disk is full.*previous checkpoint is intact"):
        checkpoint.save(root, 2, learner, tiny_model, {"seed": 0})
    assert checkpoint.latest(root) == first and not list(root.glob(".step_*"))
    assert checkpoint.load(first, learner)[0] == 1
