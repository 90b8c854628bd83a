"""Every command of the README and docs/ runs as written, where it can run here.

Commands are read from the ```bash blocks; the ```python blocks of docs/extending.md are the
files its commands import (``# my_envs.py`` on their first line), written beside them. A
command with a placeholder (``PATH``, ``MODEL``, ``...``), a remote host, a long-running server,
or one that sets the machine up is listed as not run and why; the README's first command (the
whole recipe, ~10 minutes) runs in short in ``tests/trainers/test_learn.py``. Each run command
runs in a fresh folder that has the tiny test model at ``.cache/tiny-model``, with the
project's ``agentgym`` and ``python`` first on the PATH, one after another as a reader would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_HERE = {
    r"\b(PATH|MODEL|NAME|HEAD|FILE|DIR|RUN)\b|\.\.\.": "a placeholder for the reader's own",
    r"gpu-box|http://host|localhost:8000|127\.0\.0\.1:8000|Qwen/": "a server or hub not here",
    r"^bash scripts/|^pip install": "sets the machine up (CI runs the setup and test commands)",
    r"^agentgym serve |^ray start|^torchrun": "a server, a cluster or ranks: tests start them",
    r"wiki\.jsonl|idx/|runs/(train|x|oracle|a)\b": "reads a run or corpus of the reader's",
    r"recipe=deep_research_smollm2": "the recipe: run in short by tests/trainers/test_learn.py",
}


def commands() -> list[tuple[str, str]]:
    """(page, command) of every line of every ```bash block, continuations joined."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                command = re.sub(r"\s+#.*$", "", line).strip()
                if command and not command.startswith("#"):
                    found.append((page.name, " ".join(command.split())))
    return found


def why_not(command: str) -> str | None:
    return next((why for pattern, why in NOT_HERE.items() if re.search(pattern, command)), None)


def files() -> dict[str, str]:
    """docs/extending.md's python blocks that name their file on their first line."""
    text = (ROOT / "docs" / "extending.md").read_text()
    blocks = re.findall(r"```python\n# (\w+\.py)[^\n]*\n(.*?)```", text, re.S)
    return {name: body for name, body in blocks}


RUN = [(page, c) for page, c in commands() if why_not(c) is None]


def test_the_pages_hold_commands_that_run_here():
    assert len(RUN) >= 20, RUN
    assert {"my_envs.py", "echo_backend.py"} <= set(files())
    skipped = {c: why_not(c) for _, c in commands() if why_not(c)}
    assert "bash scripts/test.sh" in skipped  # and CI runs it, exactly


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder a reader runs the commands in."""
    home = tmp_path_factory.mktemp("reader")
    (home / ".cache").mkdir()
    (home / ".cache" / "tiny-model").symlink_to(ROOT / ".cache" / "tiny-model")
    for name, body in files().items():
        (home / name).write_text(body)
    return home


@pytest.mark.slow
@pytest.mark.parametrize("page, command", RUN, ids=[f"{p}: {c[:60]}" for p, c in RUN])
def test_the_command_runs_as_written(reader, page, command):
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(reader)}
    done = subprocess.run(
        ["bash", "-c", command], cwd=reader, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{page}: {command}\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
