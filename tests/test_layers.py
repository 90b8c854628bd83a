"""The house's shape, checked on the real tree: imports point one way and close no circle.

Layers, lowest first (a module may import its own layer's and lower ones' modules only):

    core        agentgym.* (types, env, tools, parsing, registration, config, rollout, ...)
    envs        agentgym.envs.*       (never a policy: an environment does not know who plays)
    policies    agentgym.policies.*   (never an environment)
    api         agentgym (its face), agentgym.evaluate, agentgym.settings, agentgym.checks
    trainers    agentgym.trainers.*
    cli         agentgym.cli.*

Every import counts, those inside functions too (as ``../shared/tools/import_graph.py``
counts them).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOTS = {"agentgym": "agentgym", "agentgym.envs": "envs",
         "agentgym.policies": "policies", "agentgym.trainers": "trainers"}  # fmt: skip
API = {"agentgym", "agentgym.evaluate", "agentgym.settings", "agentgym.checks"}


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in ROOTS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(ROOT / folder).with_suffix("").parts]
            found[".".join([package, *[p for p in parts if p != "__init__"]])] = path
    return found


def layer(module: str) -> tuple[int, str]:
    """(height, name) of ``module``'s layer."""
    for prefix, height in (("agentgym.cli", 5), ("agentgym.trainers", 4),
                           ("agentgym.policies", 2), ("agentgym.envs", 2)):  # fmt: skip
        if module == prefix or module.startswith(prefix + "."):
            return height, prefix.rpartition(".")[2]
    return (3, "api") if module in API else (1, "core")


def imports(known: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project's modules it imports (a package's face handing names on to its
    own children is not a dependency of theirs)."""
    graph: dict[str, set[str]] = {m: set() for m in known}

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    for module, path in known.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                targets = [base, *(f"{base}.{a.name}" for a in node.names)]
            for target in targets:
                hit = resolve(target)
                if hit and hit != module and not module.startswith(hit + "."):
                    graph[module].add(hit)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_package_imports_close_no_circle():
    assert circles(imports(modules())) == []


def test_imports_point_down_the_layers_only():
    wrong = []
    for module, targets in imports(modules()).items():
        mine = layer(module)
        for target in targets:
            theirs = layer(target)
            if theirs[0] > mine[0] or (theirs[0] == mine[0] and theirs[1] != mine[1]):
                wrong.append(f"{module} ({mine[1]}) imports {target} ({theirs[1]})")
    assert wrong == []


def test_the_checker_sees_a_circle_and_an_upward_import():
    graph = {"a": {"b"}, "b": {"a"}, "c": set()}
    assert circles(graph) == [["a", "b"]]
    assert layer("agentgym.envs.swe") == (2, "envs") and layer("agentgym.types") == (1, "core")
    assert layer("agentgym.trainers.learner")[0] > layer("agentgym.evaluate")[0]
