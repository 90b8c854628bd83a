"""The sandbox images, built from the files shipped in this package (``agentgym sandbox
build``; a wheel carries them, so no clone is needed).

``swe/Dockerfile`` is the SWE sandbox: Python, pytest and git, a non-root user, a writable
``/workspace``. It builds ``FROM`` a Debian base: a registry's (``--base
debian:bookworm-slim``), or, where no registry is reachable, one made offline with debootstrap
and ``docker import`` (``agentgym/base:bookworm``; needs root and ``debootstrap``). Images
that exist are kept unless ``force``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from agentgym.errors import SandboxError

HERE = Path(__file__).parent
OFFLINE_BASE = "agentgym/base:bookworm"
SWE = "agentgym/swe:latest"
MIRROR = "http://deb.debian.org/debian"


def have(image: str) -> bool:
    """Whether the Docker engine has ``image``."""
    done = subprocess.run(["docker", "image", "inspect", image], capture_output=True)
    return done.returncode == 0


def build(
    tag: str = SWE,
    base: str | None = None,
    force: bool = False,
    mirror: str = MIRROR,
    say: Callable[[str], None] = print,
) -> str:
    """Build the SWE sandbox image ``tag`` FROM ``base`` (None: the offline base, made first
    if missing); returns ``tag``.

    Raises:
        SandboxError: no Docker engine answers, or a build step failed (its output named).
    """
    if (
        shutil.which("docker") is None
        or subprocess.run(["docker", "info"], capture_output=True).returncode
    ):
        raise SandboxError(
            "no Docker engine answers (`docker info` failed); start one (dockerd) or join the "
            "docker group, then run `agentgym sandbox build` again"
        )
    if base is None:
        base = OFFLINE_BASE
        if force or not have(base):
            _offline_base(base, mirror, say)
    if force or not have(tag):
        _run(
            ["docker", "build", "--network", "none", "-q", "-t", tag, "--build-arg",
             f"BASE={base}", str(HERE / "swe")],
            f"docker build of {tag}",
        )  # fmt: skip
        say(f"built {tag} (FROM {base})")
    return tag


def _offline_base(tag: str, mirror: str, say: Callable[[str], None]) -> None:
    """A minimal Debian bookworm with python3, pytest and git, by debootstrap (root)."""
    if shutil.which("debootstrap") is None:
        raise SandboxError(
            "no registry base given and debootstrap is not installed: pass --base "
            "debian:bookworm-slim where a registry is reachable, or install debootstrap (root)"
        )
    with tempfile.TemporaryDirectory() as root:
        say(f"debootstrap bookworm (minbase + python3, pytest, git) into {root}")
        _run(
            ["debootstrap", "--variant=minbase",
             "--include=python3,python3-pytest,git,ca-certificates", "bookworm", root, mirror],
            "debootstrap (it needs root)",
        )  # fmt: skip
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in Path(root, junk).glob("*"):
                if path.is_file():
                    path.unlink()
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        _run(["docker", "import", "-c", 'CMD ["/bin/bash"]', "-", tag], "docker import", tar)
        tar.wait()
    say(f"built {tag}")


def _run(cmd: list[str], what: str, feed: subprocess.Popen[bytes] | None = None) -> None:
    done = subprocess.run(
        cmd, stdin=feed.stdout if feed else None, capture_output=True, text=True, check=False
    )
    if done.returncode:
        tail = (done.stderr or done.stdout).strip()[-500:]
        raise SandboxError(f"{what} failed (exit {done.returncode}): {tail}")
