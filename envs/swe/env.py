"""``swe``: fix a repository so that its tests pass (SWE-Gym / R2E-Gym tools and execution
reward; SWE-RL's similarity reward and single-turn patch mode).

The repository lives in a sandbox (docker by default: no network, bounded memory, CPU,
processes and time). Tools: ``view``, ``search``, ``edit``, ``create``, ``bash``,
``run_tests`` and ``submit``. At ``submit`` (or at the turn limit: auto-submit) the final
diff is taken with git and scored:

* ``reward=execution``: 1 when every FAIL_TO_PASS test passes and every PASS_TO_PASS test
  still passes (``partial_credit``: the share of FAIL_TO_PASS passing, when PASS_TO_PASS hold).
* ``reward=similarity`` (SWE-RL): ``difflib.SequenceMatcher(None, diff, oracle).ratio()``
  over the hunks (git's header lines dropped),
  and -1 when the output is malformed (patch mode: no diff, or one that does not apply).

The change is scored where the model cannot reach: the diff (against the task's base commit,
binary files included) is applied in a new sandbox of the task, whose tests, ``conftest.py``
and pytest config are put back as the task has them (added ones, and added top-level modules
that would shadow pytest, are removed; bytecode caches deleted) before the tests run. Nothing
the model did to its own sandbox's git (hooks, filters, replace refs, ignore rules) or outside
the repository takes part.

``mode=patch`` is single-turn: the model sees the issue and the files and answers with the
whole patch in a ```diff block. ``info`` at the end: ``diff``, ``fail_to_pass`` and
``pass_to_pass`` results, ``similarity``, ``fix`` (``applied``; ``too large`` past
``tasks.MAX_FIX_BYTES``; ``does not apply``). Per turn, ``run_tests`` gives the signal
``tests_passed``: the share of the task's FAIL_TO_PASS tests that it saw pass for the first
time (running tests that pass already, or the same ones again, earns nothing: an episode's sum
is at most 1), and that the change passes in a scoring sandbox too (tests made to pass by
editing them earn nothing).
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from agentgym.env import AgentEnv
from agentgym.envs.swe.baselines import BASELINES
from agentgym.envs.swe.config import SWEConfig
from agentgym.envs.swe.tasks import (
    SWETask,
    fresh_results,
    load_tasks,
    make_sandbox,
    take_fix,
    test_results,
)
from agentgym.errors import ToolError
from agentgym.sandbox.docker import check_daemon
from agentgym.tools import tool
from agentgym.types import Message

DIFF = re.compile(r"```(?:diff|patch)?\n(.*?)```", re.S)
PROMPT = (
    "Fix the issue below in the repository at {root}. Explore with view/search/bash, change "
    "files with edit/create, check with run_tests, and call submit when done.\n\n{issue}"
)
PATCH_PROMPT = (
    "Fix the issue below. Answer with the whole fix as a unified diff (paths a/... b/...) in "
    "one ```diff block.\n\n{issue}\n\n{files}"
)


class SWEEnv(AgentEnv):
    """Patch a repository in a sandbox until its failing tests pass (SWE-RL).

    See the module docstring."""

    baselines = BASELINES
    config_model = SWEConfig
    cfg: SWEConfig

    @classmethod
    def preflight(cls, config: dict[str, Any]) -> None:
        """The Docker daemon answers, and has the image unless a dataset names its own."""
        cfg = SWEConfig(**config)
        if cfg.backend == "docker":
            check_daemon(cfg.image if cfg.dataset is None else None)

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        cfg = self.cfg
        self.tasks = load_tasks(cfg)
        self.sandbox: Any = None
        self._pools: dict[int, Any] = {}
        self.t: SWETask = self.tasks[0]
        self.base = "HEAD"
        self._fixed: set[str] = set()  # FAIL_TO_PASS tests credited to run_tests
        self._scored: tuple[bytes, dict[str, bool] | None] | None = None  # the last fix scored

    # ---- episode ------------------------------------------------------------------------

    async def atask(self, options: dict[str, Any]) -> tuple[list[Message], dict[str, Any]]:
        index = self.task_index(len(self.tasks))
        self.t = t = self.tasks[index]
        self._fixed, self._scored = set(), None
        await self._release_sandbox()
        self.sandbox = await make_sandbox(self.cfg, t, self._pools)
        setup = await self.sandbox.setup(
            t.files, f"{t.setup_command} && git rev-parse HEAD", timeout=120
        )
        if setup.exit_code != 0:
            raise ToolError(f"task setup failed: {setup.output[-500:]}")
        self.base = setup.stdout.split()[-1]  # scoring restores the tests from this commit
        if self.cfg.mode == "patch":
            files = "\n\n".join(f"--- {p}\n{c}" for p, c in sorted(t.files.items()))
            text = PATCH_PROMPT.format(issue=t.issue, files=files)
        else:
            text = PROMPT.format(root=self.sandbox.workdir, issue=t.issue)
        info = {
            "task_id": t.id, "patch": t.patch, "fail_to_pass": t.fail_to_pass, "edits": t.edits,
        }  # fmt: skip
        return [Message(role="user", content=text)], info

    async def aon_turn_limit(self) -> None:
        if self.cfg.mode == "tools":  # out of turns: score what is there (auto-submit)
            await self._score(malformed=False)

    async def _release_sandbox(self) -> None:
        if self.sandbox is not None:
            sandbox, self.sandbox = self.sandbox, None
            await sandbox.close()

    async def arelease(self) -> None:
        await self._release_sandbox()
        for pool in self._pools.values():
            await pool.close()
        self._pools.clear()

    # ---- scoring ------------------------------------------------------------------------

    async def _score(self, malformed: bool) -> None:
        """Score the model's change where it cannot reach: carried as a diff into a new
        sandbox of the task, its guarded files put back (``tasks.fresh_results``)."""
        t, cfg = self.t, self.cfg
        fix = b"" if malformed else await take_fix(self.sandbox, self.base)
        diff = (fix or b"").decode("utf-8", "replace")[: cfg.limits.output_bytes]
        similarity = difflib.SequenceMatcher(None, _hunks(diff), _hunks(t.patch)).ratio()
        results, carried = None, "too large"
        if fix is not None:
            results = await self._results(fix)
            carried = "applied" if results is not None else "does not apply"
        results = results or {}
        f2p = [results.get(x, False) for x in t.fail_to_pass]
        p2p = [results.get(x, False) for x in t.pass_to_pass]
        solved = all(f2p) and all(p2p)
        if cfg.reward == "similarity":
            self.add_reward("similarity", -1.0 if malformed else similarity)
        elif cfg.partial_credit:
            self.add_reward("tests", (sum(f2p) / max(1, len(f2p))) * all(p2p))
        else:
            self.add_reward("tests", float(solved))
        self.end(
            success=solved,
            diff=diff,
            similarity=similarity,
            fail_to_pass=dict(zip(t.fail_to_pass, f2p, strict=True)),
            pass_to_pass_ok=all(p2p),
            fix=carried,
        )

    async def aon_reply(self, content: str) -> list[Message]:
        if self.cfg.mode == "patch":
            await self._apply_reply(content)
            return []
        self.add_reward("format", -self.format_penalty)
        return [Message(role="user", content="Use the tools; call submit() when you are done.")]

    # ---- tools --------------------------------------------------------------------------

    async def _text(self, path: str) -> str:
        try:
            data = await self.sandbox.read(path)
        except FileNotFoundError:
            raise ToolError(f"no file {path!r}; use search or bash ls to find files") from None
        if b"\0" in data[:8192]:
            raise ToolError(f"{path!r} is a binary file; it cannot be viewed or edited as text")
        return data.decode("utf-8", "replace")

    def _cap(self, text: str) -> str:
        limit = self.cfg.output_chars
        return (
            text
            if len(text) <= limit
            else text[:limit] + f"\n[... {len(text) - limit} more characters cut]"
        )

    @tool
    async def view(self, path: str, start: int = 1, end: int = 0) -> str:
        """Show a file with line numbers.

        Args:
            path: The file, relative to the repository root.
            start: First line to show (1-based).
            end: Last line to show (0: to the end).
        """
        lines = (await self._text(path)).splitlines()
        stop = len(lines) if end <= 0 else min(end, len(lines))
        shown = [f"{i:>5} {lines[i - 1]}" for i in range(max(1, start), stop + 1)]
        return self._cap(
            "\n".join(shown) or f"(no lines in {start}..{stop}; the file has {len(lines)})"
        )

    @tool
    async def search(self, pattern: str, path: str = ".") -> str:
        """Find lines matching a regular expression.

        Args:
            pattern: An extended regular expression (grep -E).
            path: A file or folder to search in.
        """
        if not pattern:
            raise ToolError("the pattern is empty")
        q = pattern.replace("'", "'\\''")
        r = await self.sandbox.exec(
            f"grep -rnIE --exclude-dir=.git -- '{q}' '{path}' | head -200", timeout=30
        )
        return self._cap(r.stdout or f"no match for {pattern!r} in {path}")

    @tool
    async def edit(self, path: str, old: str, new: str) -> str:
        """Replace one exact occurrence of old with new in a file.

        Args:
            path: The file.
            old: The exact text to replace (include enough lines to be unique).
            new: The replacement.
        """
        text = await self._text(path)
        count = text.count(old) if old else 0
        if count == 0:
            raise ToolError(
                f"the text to replace was not found in {path}; view the file and copy it exactly"
            )
        if count > 1:
            raise ToolError(
                f"the text to replace occurs {count} times in {path}; include more lines"
            )
        await self.sandbox.write(path, text.replace(old, new, 1).encode())
        return f"edited {path}"

    @tool
    async def create(self, path: str, content: str) -> str:
        """Create a file (or overwrite one).

        Args:
            path: The new file, relative to the repository root.
            content: Its whole text.
        """
        try:
            await self.sandbox.write(path, content.encode())
        except PermissionError as exc:
            raise ToolError(str(exc)) from None
        return f"wrote {path} ({len(content)} characters)"

    @tool
    async def bash(self, command: str) -> str:
        """Run a shell command in the repository (no network; time-limited).

        Args:
            command: The command line.
        """
        r = await self.sandbox.exec(command, timeout=self.cfg.command_timeout)
        note = f"\n[killed after {self.cfg.command_timeout:g} s]" if r.timed_out else ""
        if r.oom_killed:
            note = f"\n[killed: out of memory (the sandbox has {self.sandbox.limits.memory_mb} MB)]"
        cut = "\n[output cut]" if r.truncated else ""
        return self._cap(f"{r.output}{cut}{note}\n[exit code {r.exit_code}]")

    @tool
    async def run_tests(self, ids: list[str] | None = None) -> str:
        """Run tests with the repository's test runner (pytest unless it has its own).

        Args:
            ids: Test ids (pytest: file::name) or files (Django: test labels such as
                admin_views.tests); empty runs the whole suite.
        """
        results = await test_results(self.sandbox, self.t, list(ids or []), self.cfg)
        if not results:
            return "no tests ran (check the ids)"
        passed = sum(results.values())
        fixed = {x for x in self.t.fail_to_pass if results.get(x)} - self._fixed
        if fixed:  # credited only where the change passes them as scoring runs them
            fixed &= await self._passing_fail_to_pass()
        self._fixed |= fixed
        self.add_signal("tests_passed", len(fixed) / max(1, len(self.t.fail_to_pass)))
        lines = [f"{'PASSED' if ok else 'FAILED'} {name}" for name, ok in sorted(results.items())]
        return self._cap(f"{passed}/{len(results)} passed\n" + "\n".join(lines))

    async def _results(self, fix: bytes) -> dict[str, bool] | None:
        """Scoring's test results for ``fix`` (``tasks.fresh_results``); the last fix's are
        kept, so that a submit after a ``run_tests`` with no change between costs nothing."""
        if self._scored is None or self._scored[0] != fix:
            t = self.t
            ids = t.fail_to_pass + t.pass_to_pass
            self._scored = (fix, await fresh_results(self.cfg, t, self._pools, fix, ids))
        return self._scored[1]

    async def _passing_fail_to_pass(self) -> set[str]:
        """The FAIL_TO_PASS tests that the change as it is now passes as scoring runs them."""
        fix = await take_fix(self.sandbox, self.base)
        results = None if fix is None else await self._results(fix)
        return {x for x in self.t.fail_to_pass if (results or {}).get(x)}

    def program_variables(self) -> dict[str, str]:
        """A program's shell commands run in this episode's sandbox (``agentgym/gateway/
        docker_shim.py`` stands in for ``docker`` and execs in it), with its bounds."""
        if self.sandbox is None or getattr(self.sandbox, "id", None) is None:
            return {}
        return {
            "AGENTGYM_SANDBOX": str(self.sandbox.id),
            "AGENTGYM_WORKDIR": self.t.workdir,
            "AGENTGYM_COMMAND_TIMEOUT": f"{self.cfg.command_timeout:g}",
        }

    @tool
    async def submit(self) -> str:
        """Submit the repository as it is now; this ends the episode."""
        await self._score(malformed=False)
        return "submitted"

    async def _apply_reply(self, content: str) -> None:
        """Patch mode: apply the diff in the reply, then score (malformed: -1 / format)."""
        found = DIFF.findall(content)
        patch = found[-1] if found else ""
        ok = False
        if patch.strip():
            await self.sandbox.write(".git/agentgym-reply.patch", patch.encode())
            r = await self.sandbox.exec(
                "git apply --whitespace=nowarn .git/agentgym-reply.patch", timeout=30
            )
            ok = r.exit_code == 0
        if not ok and self.cfg.reward == "execution":  # similarity's -1 is its format penalty
            self.add_reward("format", -self.format_penalty)
        await self._score(malformed=not ok)


def _hunks(diff: str) -> str:
    """A diff without git's header lines (``diff --git``, ``index``, modes), so that a
    ``git diff`` and a plain unified diff of the same change compare equal."""
    keep = ("--- ", "+++ ", "@@", "+", "-", " ")
    lines = [line for line in diff.splitlines(keepends=True) if line.startswith(keep)]
    # git adds the enclosing function to a hunk's header ("@@ -1,3 +1,3 @@ def f():")
    return "".join(_HUNK.sub(r"\1\n", line) for line in lines)


_HUNK = re.compile(r"^(@@ [^@]* @@).*\n?$")
