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


MY_ENVS = '''
from agentgym import AgentEnv, Message, ToolError, register, tool

class GuessNumber(AgentEnv):
    max_turns = 8

    def task(self, options):
        self.secret = int(self.np_random.integers(1, 101))
        return [Message(role="user", content="Guess my number (1-100).")], {}

    @tool
    def guess(self, number: int) -> str:
        """Guess the number.

        Args:
            number: Your guess.
        """
        if number == self.secret:
            self.add_reward("correct", 1.0)
            self.end(success=True)
            return "correct"
        return "higher" if number < self.secret else "lower"

def fifty(messages, info, rng):
    return '<tool_call>{"name": "guess", "arguments": {"number": 50}}</tool_call>'

register("my_guess", GuessNumber)
'''


def test_the_readme_example_module_works_with_import_from_the_current_directory(
    tmp_path, tiny_model
):
    """`import=my_envs` from the folder that holds my_envs.py, no PYTHONPATH: eval and train,
    through the installed `agentgym` command (which, unlike `python -m`, does not put the
    current directory on the path)."""
    (tmp_path / "my_envs.py").write_text(MY_ENVS)
    agentgym = str(Path(sys.executable).parent / "agentgym")
    env = {"PYTHONPATH": ""}
    ev = ["eval", "import=my_envs", "env=my_guess", "policy.script=my_envs:fifty", "episodes=2"]
    r = subprocess.run(
        [agentgym, *ev, "out=e"],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, **env}, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "e" / "summary.json").read_text())["episodes"] == 2
    tr = ["train", "import=my_envs", "env=my_guess", f"policy.model={tiny_model}", "policy=hf"]
    small = ["trainer.steps=1", "trainer.tasks_per_step=2", "trainer.group_size=2"]
    r = subprocess.run(
        [agentgym, *tr, *small, "policy.max_new_tokens=8", "out=t"],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, **env}, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "t" / "model" / "config.json").exists()
