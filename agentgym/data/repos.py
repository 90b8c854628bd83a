# ruff: noqa: E501  (the templates are source code, kept one statement per line)
"""Seeded repository tasks for the SWE environment (SWE-Gym / SWE-bench style).

Each task is a small but real Python package: modules of functions drawn from a library of
templates, a pytest suite, and one or more injected bugs of a realistic kind (off-by-one,
wrong operator, missing edge case, wrong default, swapped arguments). The issue text is
written from the failing behaviour (the buggy code is run to see what it returns). Every task
carries the oracle patch (a unified diff), and FAIL_TO_PASS / PASS_TO_PASS test ids.

Difficulty: 1 = one module, one bug; 2 = three modules, one bug; 3 = four modules, bugs in
two files.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agentgym.data.world.names import NameSpace, syllables


@dataclass(frozen=True)
class Bug:
    kind: str
    old: str
    new: str
    call: str
    """An expression that shows the bug (issue text)."""
    expected: str


@dataclass(frozen=True)
class Template:
    name: str
    source: str
    tests: dict[str, str]
    """Test name -> body; ``test_bug_*`` tests fail with the bug, the others pass both ways."""
    bugs: list[Bug]


T = [
    Template(
        "chunk",
        'def chunk(items, size):\n    """Split items into lists of at most size items."""\n'
        "    return [items[i : i + size] for i in range(0, len(items), size)]\n",
        {
            "test_even": "assert chunk([1, 2, 3, 4], 2) == [[1, 2], [3, 4]]",
            "test_bug_tail": "assert chunk([1, 2, 3], 2) == [[1, 2], [3]]",
        },
        [
            Bug(
                "off-by-one",
                "range(0, len(items), size)",
                "range(0, len(items) - 1, size)",
                "chunk([1, 2, 3], 2)",
                "[[1, 2], [3]]",
            )
        ],
    ),
    Template(
        "clamp",
        'def clamp(x, lo, hi):\n    """Limit x to the interval [lo, hi]."""\n    return max(lo, min(x, hi))\n',
        {
            "test_inside": "assert clamp(2, 0, 5) == 2",
            "test_bug_above": "assert clamp(9, 0, 5) == 5",
        },
        [
            Bug(
                "swapped arguments",
                "max(lo, min(x, hi))",
                "max(hi, min(x, lo))",
                "clamp(9, 0, 5)",
                "5",
            )
        ],
    ),
    Template(
        "mean",
        'def mean(xs):\n    """The arithmetic mean of xs; 0.0 for an empty list."""\n'
        "    if not xs:\n        return 0.0\n    return sum(xs) / len(xs)\n",
        {
            "test_values": "assert mean([1, 2, 3]) == 2",
            "test_bug_empty": "assert mean([]) == 0.0",
        },
        [Bug("missing edge case", "    if not xs:\n        return 0.0\n", "", "mean([])", "0.0")],
    ),
    Template(
        "is_leap",
        'def is_leap(year):\n    """True for leap years of the Gregorian calendar."""\n'
        "    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)\n",
        {
            "test_common": "assert is_leap(2024) and not is_leap(2023)",
            "test_bug_century": "assert is_leap(2000) and not is_leap(1900)",
        },
        [
            Bug(
                "wrong operator",
                "(year % 100 != 0 or year % 400 == 0)",
                "(year % 100 != 0 and year % 400 == 0)",
                "is_leap(2000)",
                "True",
            )
        ],
    ),
    Template(
        "paginate",
        'def paginate(items, page, per_page=10):\n    """Items of the 1-based page (10 per page by default)."""\n'
        "    start = (page - 1) * per_page\n    return items[start : start + per_page]\n",
        {
            "test_explicit": "assert paginate(list(range(9)), 2, per_page=4) == [4, 5, 6, 7]",
            "test_bug_default": "assert paginate(list(range(30)), 2) == list(range(10, 20))",
        },
        [
            Bug(
                "wrong default",
                "per_page=10):",
                "per_page=20):",
                "paginate(list(range(30)), 2)",
                "[10, 11, 12, 13, 14, 15, 16, 17, 18, 19]",
            )
        ],
    ),
    Template(
        "truncate",
        'def truncate(text, n):\n    """text cut to at most n characters, ending in "..." when cut."""\n'
        '    if len(text) <= n:\n        return text\n    return text[: n - 3] + "..."\n',
        {
            "test_short": 'assert truncate("abc", 5) == "abc"',
            "test_bug_exact": 'assert truncate("abcde", 5) == "abcde"',
        },
        [
            Bug(
                "off-by-one",
                "if len(text) <= n:",
                "if len(text) < n:",
                'truncate("abcde", 5)',
                "'abcde'",
            )
        ],
    ),
    Template(
        "safe_div",
        'def safe_div(a, b, default=0.0):\n    """a / b, or default when b is 0."""\n'
        "    if b == 0:\n        return default\n    return a / b\n",
        {
            "test_div": "assert safe_div(6, 3) == 2",
            "test_bug_order": "assert safe_div(1, 4) == 0.25",
        },
        [Bug("swapped arguments", "return a / b", "return b / a", "safe_div(1, 4)", "0.25")],
    ),
    Template(
        "count_vowels",
        'def count_vowels(text):\n    """How many of the characters of text are vowels (a, e, i, o, u; any case)."""\n'
        '    return sum(c in "aeiou" for c in text.lower())\n',
        {
            "test_lower": 'assert count_vowels("banana") == 3',
            "test_bug_upper": 'assert count_vowels("AEIOU") == 5',
        },
        [
            Bug(
                "missing edge case",
                "for c in text.lower())",
                "for c in text)",
                'count_vowels("AEIOU")',
                "5",
            )
        ],
    ),
    Template(
        "running_max",
        'def running_max(xs):\n    """The largest value seen so far, at each position."""\n'
        "    out, best = [], None\n    for x in xs:\n"
        "        best = x if best is None or x > best else best\n        out.append(best)\n    return out\n",
        {
            "test_increasing": "assert running_max([1, 2, 3]) == [1, 2, 3]",
            "test_bug_drop": "assert running_max([3, 1, 2]) == [3, 3, 3]",
        },
        [
            Bug(
                "wrong operator",
                "x > best else best",
                "x < best else best",
                "running_max([3, 1, 2])",
                "[3, 3, 3]",
            )
        ],
    ),
    Template(
        "last_n",
        'def last_n(items, n):\n    """The last n items (all of them when n exceeds the length)."""\n'
        "    return items[-n:] if n > 0 else []\n",
        {
            "test_some": "assert last_n([1, 2, 3], 2) == [2, 3]",
            "test_bug_zero": "assert last_n([1, 2, 3], 0) == []",
        },
        [
            Bug(
                "missing edge case",
                "items[-n:] if n > 0 else []",
                "items[-n:]",
                "last_n([1, 2, 3], 0)",
                "[]",
            )
        ],
    ),
]


@dataclass
class RepoTask:
    """One repository with its bug(s), issue text, oracle patch and test ids."""

    id: str
    package: str
    files: dict[str, str]
    """Path -> content of the buggy repository."""
    fixed: dict[str, str]
    issue: str
    patch: str
    fail_to_pass: list[str]
    pass_to_pass: list[str]
    difficulty: int
    bugs: list[str] = field(default_factory=list)
    edits: list[tuple[str, str, str]] = field(default_factory=list)
    """The fix as exact replacements: (path, the buggy text, the fixed text)."""

    def write(self, root: Path) -> None:
        for path, text in self.files.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text)


def replacement(before: str, after: str) -> tuple[str, str]:
    """Whole lines of ``before`` that, replaced by the returned lines, give ``after``: the
    changed lines and the line above them (so that a deletion has text to anchor on)."""
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    ops = [op for op in difflib.SequenceMatcher(a=a, b=b).get_opcodes() if op[0] != "equal"]
    i1, j1 = max(0, ops[0][1] - 1), max(0, ops[0][3] - 1)
    i2, j2 = ops[-1][2], ops[-1][4]
    return "".join(a[i1:i2]), "".join(b[j1:j2])


def unified_diff(before: dict[str, str], after: dict[str, str]) -> str:
    """A ``git apply``-able diff from ``before`` to ``after`` (path -> text)."""
    out: list[str] = []
    for path in sorted(set(before) | set(after)):
        a, b = before.get(path, ""), after.get(path, "")
        if a != b:
            out += difflib.unified_diff(
                a.splitlines(keepends=True), b.splitlines(keepends=True), f"a/{path}", f"b/{path}"
            )
    return "".join(out)


def _visible(test: str) -> str:
    """The name a test has in the repository (``test_bug_x`` marks it, ``test_x`` shows it)."""
    return test.replace("test_bug_", "test_", 1)


def _observed(source: str, call: str) -> str:
    scope: dict[str, Any] = {}
    exec(source, scope)  # our own generated code, not a model's
    try:
        return repr(eval(call, scope))
    except Exception as exc:  # the bug may raise
        return f"raises {type(exc).__name__}: {exc}"


def make_repo_tasks(n: int, seed: int = 0, difficulty: int = 1) -> list[RepoTask]:
    """``n`` tasks; the same seed gives the same repositories byte for byte. Difficulty 0 is
    difficulty 1's kind of repository with an issue that names the fix exactly (the file, the
    buggy text and what it should be): a tier for a small model to learn the tools on."""
    if difficulty not in (0, 1, 2, 3):
        raise ValueError(f"difficulty is 0, 1, 2 or 3, got {difficulty}")
    rng = np.random.default_rng([seed, difficulty])
    names = NameSpace(syllables(rng, 40), 2, salt=seed)
    return [_task(rng, names.words(i, 2)[0].lower(), i, seed, difficulty) for i in range(n)]


def _task(
    rng: np.random.Generator, package: str, index: int, seed: int, difficulty: int
) -> RepoTask:
    n_modules = {0: 1, 1: 1, 2: 3, 3: 4}[difficulty]
    picks = [T[int(i)] for i in rng.choice(len(T), n_modules, replace=False)]
    buggy_idx = [0] if difficulty < 3 else [0, 1]
    rng.shuffle(picks)
    fixed = {f"{package}/__init__.py": f'"""{package}: small utilities."""\n'}
    files = dict(fixed)
    f2p, p2p, issue, bugs, edits = [], [], [], [], []
    for m, tpl in enumerate(picks):
        mod = f"{package}/{tpl.name}s.py"
        test_path = f"tests/test_{tpl.name}s.py"
        tests = f"from {package}.{tpl.name}s import {tpl.name}\n\n" + "".join(
            f"\ndef {_visible(name)}():\n    {body}\n" for name, body in tpl.tests.items()
        )
        fixed[mod], fixed[test_path] = tpl.source, tests
        files[test_path] = tests
        if m in buggy_idx:
            bug = tpl.bugs[int(rng.integers(len(tpl.bugs)))]
            files[mod] = tpl.source.replace(bug.old, bug.new)
            got = _observed(files[mod], bug.call)
            issue.append(f"`{bug.call}` returns `{got}`, but it should return `{bug.expected}`.")
            fix = replacement(files[mod], tpl.source)
            if difficulty == 0:
                issue.append(
                    f"The fix: in `{mod}`, replace\n```\n{fix[0]}```\nwith\n```\n{fix[1]}```"
                )
            bugs.append(f"{mod}: {bug.kind}")
            edits.append((mod, *fix))
            f2p += [f"{test_path}::{_visible(t)}" for t in tpl.tests if t.startswith("test_bug")]
            p2p += [f"{test_path}::{t}" for t in tpl.tests if not t.startswith("test_bug")]
        else:
            files[mod] = tpl.source
            p2p += [f"{test_path}::{_visible(t)}" for t in tpl.tests]
    text = f"Bug report for `{package}`\n\n" + "\n".join(issue) + "\n\nPlease fix the library code."
    return RepoTask(
        id=f"{package}-{seed}-{difficulty}-{index}",
        package=package,
        files=files,
        fixed=fixed,
        issue=text,
        patch=unified_diff(files, fixed),
        fail_to_pass=f2p,
        pass_to_pass=p2p,
        difficulty=difficulty,
        bugs=bugs,
        edits=edits,
    )
