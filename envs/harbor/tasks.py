"""Harbor task folders: read, checked before any episode, and their images built offline.

A task folder holds ``instruction.md`` (the task), ``task.toml`` (timeouts and resources),
``environment/Dockerfile`` (the sandbox; or ``[environment] docker_image``), ``tests/test.sh``
(the verifier, copied in only after the agent has finished) and ``solution/solve.sh`` (the
oracle). ``task.toml`` is read with Harbor's own keys (``harbor.models.task.config``; Harbor
needs Python 3.12, so its models are not imported here: ``tests/envs/test_harbor.py`` checks
this reading against them).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentgym.errors import ConfigError, EnvError
from agentgym.sandbox.images import have

BUILD_PREFIX = "agentgym-harbor"


@dataclass(frozen=True)
class HarborTask:
    """One task folder, as ``task.toml`` configures it."""

    folder: Path
    instruction: str
    image: str | None
    """``[environment] docker_image``: used as it is, instead of building the Dockerfile."""
    agent_timeout_s: float | None
    verifier_timeout_s: float
    build_timeout_s: float
    cpus: float
    memory_mb: int
    workdir: str | None

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def dockerfile(self) -> Path:
        return self.folder / "environment" / "Dockerfile"


def load_tasks(path: str) -> list[HarborTask]:
    """The task at ``path``, or every task folder under it (sorted by name).

    Raises:
        ConfigError: no task there, or a task without ``tests/test.sh``, without a Dockerfile
            or an image, or with a ``task.toml`` that does not parse (named, with the fix).
    """
    root = Path(path).expanduser()
    folders = [root] if (root / "instruction.md").is_file() else sorted(
        p.parent for p in root.glob("*/instruction.md")
    )  # fmt: skip
    if not folders:
        raise ConfigError(
            "env.path", f"{path} holds no Harbor task (no instruction.md in it or its folders)",
            "point it at a task folder, or a folder of them",
        )  # fmt: skip
    return [_task(folder) for folder in folders]


def _task(folder: Path) -> HarborTask:
    if not (folder / "tests" / "test.sh").is_file():
        raise ConfigError(
            "env.path", f"task {folder.name} has no tests/test.sh (its verifier)",
            "add tests/test.sh: it writes the reward to /logs/verifier/reward.txt",
        )  # fmt: skip
    try:
        toml = (
            tomllib.loads((folder / "task.toml").read_text())
            if (folder / "task.toml").is_file()
            else {}
        )
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("env.path", f"{folder / 'task.toml'} does not parse: {exc}",
                          "fix its TOML") from None  # fmt: skip
    env: dict[str, Any] = toml.get("environment", {})
    task = HarborTask(
        folder=folder,
        instruction=(folder / "instruction.md").read_text(),
        image=env.get("docker_image"),
        agent_timeout_s=toml.get("agent", {}).get("timeout_sec"),
        verifier_timeout_s=float(toml.get("verifier", {}).get("timeout_sec", 600.0)),
        build_timeout_s=float(env.get("build_timeout_sec", 600.0)),
        cpus=float(env.get("cpus") or 1),
        memory_mb=int(env.get("memory_mb") or 2048),
        workdir=env.get("workdir"),
    )
    if task.image is None and not task.dockerfile.is_file():
        raise ConfigError(
            "env.path", f"task {folder.name} has neither environment/Dockerfile nor "
            "[environment] docker_image", "add one: the sandbox the agent works in",
        )  # fmt: skip
    return task


def bases(dockerfile: Path) -> list[str]:
    """The images a Dockerfile starts from (``FROM``; not its own stages, not scratch)."""
    found, stages = [], set()
    for line in dockerfile.read_text().splitlines():
        m = re.match(r"\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            if m.group(1) not in stages and m.group(1) != "scratch":
                found.append(m.group(1))
            if m.group(2):
                stages.add(m.group(2))
    return found


def check_images(tasks: list[HarborTask]) -> None:
    """Every image the tasks start from is here (offline: nothing can be pulled).

    Raises:
        ConfigError: naming the missing image and the task that wants it.
    """
    for task in tasks:
        wanted = [task.image] if task.image else bases(task.dockerfile)
        for image in wanted:
            if not have(image):
                raise ConfigError(
                    "env.path",
                    f"task {task.name} starts FROM {image!r}, which is not on this machine "
                    "(nothing is pulled: the run is offline)",
                    "load it (`docker load`), or build FROM an image that is here, e.g. the "
                    "project's sandbox image agentgym/swe:latest (`agentgym sandbox build`)",
                )


def image_for(task: HarborTask) -> str:
    """The task's image: ``docker_image``, or its Dockerfile built once (tagged by a hash of
    ``environment/``, so an edited task builds again).

    Raises:
        EnvError: the build failed (its output's tail) or took past ``build_timeout_sec``.
    """
    if task.image:
        return task.image
    digest = hashlib.sha256()
    for path in sorted((task.folder / "environment").rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(task.folder)).encode() + path.read_bytes())
    slug = re.sub(r"[^a-z0-9_.-]", "-", task.name.lower())
    tag = f"{BUILD_PREFIX}/{slug}:{digest.hexdigest()[:12]}"
    if have(tag):
        return tag
    cmd = ["docker", "build", "--network", "none", "-q", "-t", tag, str(task.dockerfile.parent)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=task.build_timeout_s)
    except subprocess.TimeoutExpired:
        what = f"{task.name}: the build ran past {task.build_timeout_s:g} s (build_timeout_sec)"
        raise EnvError("harbor", 0, "build", what) from None
    if done.returncode:
        tail = (done.stderr or done.stdout).strip()[-800:]
        raise EnvError("harbor", 0, "build", f"{task.name}: docker build failed: {tail}")
    return tag


def workdir_of(image: str) -> str:
    """The image's ``WORKDIR`` ("/" when it sets none)."""
    done = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Config.WorkingDir}}", image],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return done.stdout.strip() or "/"
