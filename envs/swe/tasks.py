"""Tasks of ``swe`` (generated repositories or SWE-bench/SWE-Gym instances), their sandboxes
and their test runs."""

from __future__ import annotations

import base64
import json
import re
import shlex
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentgym.data.repos import make_repo_tasks
from agentgym.envs.swe.config import SWEConfig
from agentgym.envs.swe.harness import (
    REPO_RUNNERS,
    RUNNERS,
    command_for,
    files_in_patch,
    reverse_patch,
)
from agentgym.errors import ConfigError
from agentgym.sandbox import DockerSandbox, LocalSandbox, Sandbox, SandboxPool
from agentgym.sandbox.base import WORKSPACE

COMMIT = "git -c user.name=agentgym -c user.email=agentgym@localhost commit -qm"
SETUP = f"git init -q && git add -A && {COMMIT} base"


@dataclass
class SWETask:
    id: str
    issue: str
    patch: str
    fail_to_pass: list[str]
    pass_to_pass: list[str]
    files: dict[str, str] = field(default_factory=dict)
    """Generated tasks: the repository's files (copied into the sandbox)."""
    image: str | None = None
    """SWE-bench tasks: the instance's image, with the repository in ``workdir``."""
    runner: str = "pytest"
    """How the repository's tests run and read (``harness.RUNNERS``)."""
    test_files: list[str] = field(default_factory=list)
    """The files the instance's test patch touches (what a file-running runner runs)."""
    workdir: str = WORKSPACE
    setup_command: str = SETUP
    edits: list[tuple[str, str, str]] = field(default_factory=list)
    """Generated tasks: the fix as exact replacements (path, buggy text, fixed text)."""

    def write(self, root: Path) -> None:
        for path, text in self.files.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text)


def load_tasks(cfg: SWEConfig) -> list[SWETask]:
    if cfg.dataset:
        return load_swebench(cfg.dataset)[: cfg.tasks]
    return [
        SWETask(
            t.id, t.issue, t.patch, t.fail_to_pass, t.pass_to_pass, files=t.files, edits=t.edits
        )
        for t in make_repo_tasks(cfg.tasks, cfg.task_seed, cfg.difficulty)
    ]


def _ids(value: Any) -> list[str]:
    return list(json.loads(value) if isinstance(value, str) else value)


SWESMITH_REPO = re.compile(r"(?:swesmith/)?([\w.-]+?)__([\w.-]+)\.[0-9a-f]{8}")
"""SWE-smith's ``repo``: a mirror named ``owner__name.<commit>`` of a clean repository."""


def load_swebench(path: str | Path) -> list[SWETask]:
    """SWE-bench / SWE-Gym / SWE-smith instances (JSONL or a JSON list): ``instance_id``,
    ``repo``, ``problem_statement``, ``patch``, ``test_patch``, ``FAIL_TO_PASS``,
    ``PASS_TO_PASS`` (lists or JSON strings) and ``image_name`` (default: SWE-bench's
    ``swebench/sweb.eval.x86_64.<id>``). The repository is expected in ``/testbed`` of the
    image, at ``base_commit``; the test patch is applied at reset; the tests run as ``repo``
    runs them (``harness.REPO_RUNNERS``: Django's runtests.py, SymPy's bin/test, else pytest).

    A SWE-smith row (``repo`` ``owner__name.<commit>``, no test patch) is the other way round:
    its ``patch`` introduces the bug into the image's clean repository, so reset applies it
    and the gold fix is its reverse (as SWE-smith's own harness grades, ``git apply -R``).
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError("env.dataset", f"no such file {str(path)!r}", "give a local JSONL file")
    text = path.read_text().strip()
    rows = (
        json.loads(text)
        if text.startswith("[")
        else [json.loads(x) for x in text.splitlines() if x.strip()]
    )
    tasks = []
    for r in rows:
        missing = {"instance_id", "problem_statement", "patch", "FAIL_TO_PASS"} - set(r)
        if missing:
            raise ConfigError(
                "env.dataset",
                f"an instance lacks {sorted(missing)}",
                "use SWE-bench's JSONL fields",
            )
        tasks.append(_task(r))
    return tasks


def _apply(patch: str, message: str) -> str:
    """The shell command that applies ``patch`` in the repository and commits it."""
    quoted = patch.replace("'", "'\\''")
    return f"printf '%s' '{quoted}' | git apply - && git add -A && {COMMIT} {message}"


def _task(r: dict[str, Any]) -> SWETask:
    iid, repo, patch = str(r["instance_id"]), str(r.get("repo", "")), str(r["patch"])
    test_patch = str(r.get("test_patch", ""))
    smith = SWESMITH_REPO.fullmatch(repo) if not test_patch else None
    setup = f"git checkout -q {r['base_commit']} 2>/dev/null; " if r.get("base_commit") else ""
    if smith is not None:  # the bug goes in; the fix takes it out
        setup, patch, repo = _apply(patch, "bug"), reverse_patch(patch), "/".join(smith.groups())
    elif test_patch:
        setup += _apply(test_patch, "tests")
    return SWETask(
        id=iid,
        issue=str(r["problem_statement"]),
        patch=patch,
        fail_to_pass=_ids(r["FAIL_TO_PASS"]),
        pass_to_pass=_ids(r.get("PASS_TO_PASS", [])),
        image=str(
            r.get("image_name") or f"swebench/sweb.eval.x86_64.{iid.replace('__', '_1776_')}"
        ),
        workdir="/testbed",
        setup_command=setup or "true",
        runner=REPO_RUNNERS.get(repo, "pytest"),
        test_files=files_in_patch(test_patch),
    )


async def make_sandbox(cfg: SWEConfig, task: SWETask, pools: dict[int, Any]) -> Sandbox:
    """A started sandbox for ``task`` (from the warm pool where the image is the default)."""
    if cfg.backend == "local":
        sandbox: Sandbox = LocalSandbox(cfg.limits)
        await sandbox.start()
        return sandbox
    if task.image is not None:
        sandbox = DockerSandbox(task.image, cfg.limits, workdir=task.workdir, read_only=False)
        await sandbox.start()
        return sandbox
    if cfg.pool == 0:
        sandbox = DockerSandbox(cfg.image, cfg.limits)
        await sandbox.start()
        return sandbox
    if 0 not in pools:
        pools[0] = SandboxPool(lambda: DockerSandbox(cfg.image, cfg.limits), size=cfg.pool)
    return await pools[0].acquire()


# The model's change: the working tree against the base commit as git sees it through an
# index of its own (the model's is left as it is), binary files, modes and deletions included;
# no renames, colours, external diff or text conversion (which the model's git config could
# ask for); gzipped so that it travels as the exec's output.
_TAKE_FIX = (
    "set -o pipefail; export GIT_INDEX_FILE=.git/agentgym-index; rm -f $GIT_INDEX_FILE; "
    "git read-tree {base} && git add -A >/dev/null 2>&1 && git -c core.quotePath=true diff "
    "--cached --binary --no-renames --no-color --no-ext-diff --no-textconv --src-prefix=a/ "
    "--dst-prefix=b/ {base} -- | gzip -c | base64 -w0; rc=$?; rm -f $GIT_INDEX_FILE; exit $rc"
)
MAX_FIX_BYTES = 8_000_000
"""The largest change that is carried to scoring (a larger one scores as no fix)."""

# What a fix must not change: the tests (the test patch's files wherever they are, and all in
# a tests folder), the files that configure or shadow pytest, and bytecode (a planted pyc
# could stand in for a module). In the scoring sandbox, after the fix is applied: files the
# fix added are removed when guarded or a top-level module (which `python -m pytest` would
# import first), ignored or not; tracked guarded files go back to the base commit; bytecode
# caches are deleted. That sandbox's git is the task's own: nothing the model did to git
# (hooks, filters, replace refs, ignore rules) is in it.
_GUARDED = (
    r"(^|/)(tests?(/|$)|conftest\.py$|__pycache__(/|$))|\.pyc$"
    r"|^(\.?pytest\.ini|tox\.ini|setup\.cfg|pyproject\.toml)$"
)
_NO_APPLY = "agentgym: the fix does not apply"
_APPLY_FIX = f"""
before=$(mktemp); git ls-files -o -z > "$before"
git apply --whitespace=nowarn "$FIX" || {{ echo "{_NO_APPLY}"; exit 3; }}
export LC_ALL=C
git ls-files -o -z | sort -z | comm -z -13 <(sort -z "$before") - |
  grep -zE '{_GUARDED}|^[^/]+[.]py$' | xargs -0r rm -rf --
git ls-files -z | grep -zE '{_GUARDED}' | xargs -0r git checkout -q HEAD --
[ $# = 0 ] || git --literal-pathspecs ls-files -z -- "$@" | xargs -0r git checkout -q HEAD --
find . -name __pycache__ -type d -prune -exec rm -rf {{}} +
"""


async def take_fix(sandbox: Sandbox, base: str) -> bytes | None:
    """The model's change in ``sandbox`` against the commit ``base`` as a binary git diff
    (empty where git cannot give one: the model broke its repository), or None when it is
    larger than can be carried (``MAX_FIX_BYTES``, the sandbox's output cap gzipped, or more
    than git can diff in a minute)."""
    r = await sandbox.exec(_TAKE_FIX.format(base=base), timeout=60)
    if r.truncated or r.timed_out:
        return None
    unzip = zlib.decompressobj(wbits=31)
    try:
        fix = unzip.decompress(base64.b64decode(r.stdout, validate=True), MAX_FIX_BYTES)
    except (ValueError, zlib.error):  # binascii.Error is a ValueError
        return b""
    return None if unzip.unconsumed_tail else (fix if r.exit_code == 0 else b"")


async def fresh_results(
    cfg: SWEConfig, task: SWETask, pools: dict[int, Any], fix: bytes, ids: list[str]
) -> dict[str, bool] | None:
    """Run the tests ``ids`` as scoring runs them, in a new sandbox of ``task`` with ``fix``
    applied and the guarded files put back (``_GUARDED``): the model's sandbox, its git and
    whatever it left outside the repository take no part. None when ``fix`` does not apply."""
    sandbox = await make_sandbox(cfg, task, pools)
    try:
        name = ".agentgym-fix.patch"
        apply = f'FIX=$(mktemp) && mv {name} "$FIX" && {task.setup_command}'
        if fix:  # "$@": the test patch's files, guarded wherever they are (SWE-bench's rule)
            files = " ".join(shlex.quote(f) for f in task.test_files)
            apply += f" && set -- {files} && {{ {_APPLY_FIX} }}"
        r = await sandbox.setup({**task.files, name: fix}, apply, timeout=120)
        if r.exit_code == 3 and _NO_APPLY in r.stdout:
            return None
        if r.exit_code != 0:
            raise RuntimeError(f"the scoring sandbox's setup failed: {r.output[-300:]}")
        return await test_results(sandbox, task, ids, cfg, scoring=True)
    finally:
        await sandbox.close()


async def test_results(
    sandbox: Sandbox, task: SWETask, ids: list[str], cfg: SWEConfig, scoring: bool = False
) -> dict[str, bool]:
    """Run the task's tests as its repository runs them (``harness``); test id -> passed.
    Scoring runs the test files of the task's test patch where the runner takes files; the
    model's ``run_tests`` runs the ids (or files, or labels) it names."""
    files = task.test_files if scoring else []
    command = command_for(task.runner, ids, files)
    r = await sandbox.exec(command, timeout=cfg.command_timeout * 3)
    return RUNNERS[task.runner].parse(r.stdout + "\n" + r.stderr)
