"""A custom environment from a package outside agentgym, found three ways: ``register`` in an
imported module, the ``agentgym.envs`` entry point of an installed distribution, and
``gymnasium.make``."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).parent / "plugin_pkg"


def agentgym_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agentgym.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory) -> Path:
    """The test distribution, really installed (pip, into a target dir put on PYTHONPATH)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(PLUGIN),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


def test_entry_point_plugin_through_cli_and_gymnasium(installed_plugin, tmp_path):
    env = {"PYTHONPATH": str(installed_plugin)}
    listed = agentgym_cli("envs", env=env)
    assert "count_plugin" in listed.stdout, listed.stderr
    result = agentgym_cli(
        "eval", "env=count_plugin", "episodes=4", "group_size=2", f"out={tmp_path}", env=env
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["success_rate"] == 1.0 and summary["episodes"] == 4
    code = (
        "import gymnasium, agentgym; agentgym.list_envs(); "
        "e = gymnasium.make('agentgym/count_plugin-v0'); o, i = e.reset(seed=1); "
        "print(e.step(e.unwrapped.oracle(o.messages, i, None))[1])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    )
    assert out.stdout.strip() == "1.0"


def test_register_from_imported_module(tmp_path):
    env = {"PYTHONPATH": str(PLUGIN)}
    result = agentgym_cli(
        "eval",
        "env=count_import",
        "episodes=2",
        "import=agentgym_testplugin",
        f"out={tmp_path}",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["mean_reward"] == 1.0
    result = agentgym_cli(
        "eval",
        "env=count_import",
        "episodes=2",
        "--import",
        "agentgym_testplugin",
        f"out={tmp_path}/b",
        env=env,
    )
    assert result.returncode == 0, result.stderr
