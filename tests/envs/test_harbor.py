"""env=harbor: Harbor task folders written here, built offline FROM the project's sandbox image,
played in a real container and scored by their own tests/test.sh."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agentgym.cli import main
from agentgym.envs.harbor.tasks import load_tasks

pytestmark = pytest.mark.docker

DOCKERFILE = "FROM agentgym/swe:latest\nUSER root\nRUN mkdir -p /app\nWORKDIR /app\n"
TEST_TXT = (
    'if [ "$(cat /app/out.txt 2>/dev/null)" = hello ]; then echo 1 > /logs/verifier/reward.txt; '
    "else echo 0 > /logs/verifier/reward.txt; fi\n"
)
TEST_JSON = (
    "python3 -c \"import json, pathlib; ok = pathlib.Path('/app/sum.txt').read_text().strip() "
    "== '5' if pathlib.Path('/app/sum.txt').exists() else False; "
    "pathlib.Path('/logs/verifier/reward.json').write_text(json.dumps({'reward': float(ok)}))\"\n"
)
TOML = """[agent]
timeout_sec = 120
[verifier]
timeout_sec = 60
[environment]
cpus = 1
memory_mb = 512
"""


def write_task(root: Path, name: str, instruction: str, test: str, solve: str) -> Path:
    folder = root / name
    for sub in ("environment", "tests", "solution"):
        (folder / sub).mkdir(parents=True)
    (folder / "instruction.md").write_text(instruction)
    (folder / "task.toml").write_text(TOML)
    (folder / "environment" / "Dockerfile").write_text(DOCKERFILE)
    (folder / "tests" / "test.sh").write_text(test)
    (folder / "solution" / "solve.sh").write_text(solve)
    return folder


@pytest.fixture(scope="module")
def tasks(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("harbor")
    write_task(
        root, "hello", "Write hello to /app/out.txt.", TEST_TXT, "echo hello > /app/out.txt\n"
    )
    write_task(root, "sum", "Write 2 + 3 to /app/sum.txt.", TEST_JSON, "echo 5 > /app/sum.txt\n")
    return root


def _eval(out: Path, tasks: Path, *extra: str) -> tuple[dict, list[dict]]:
    code = main(["eval", "env=harbor", f"env.path={tasks}", "policy=scripted", f"out={out}",
                 "episodes=2", *extra])  # fmt: skip
    assert code == 0
    rows = [json.loads(x) for x in (out / "trajectories.jsonl").read_text().splitlines()]
    return json.loads((out / "summary.json").read_text()), rows


def test_the_oracle_scores_one_and_doing_nothing_zero(tasks, tmp_path):
    oracle, rows = _eval(tmp_path / "o", tasks)
    assert oracle["mean_reward"] == 1.0 and oracle["success_rate"] == 1.0
    asked = sorted(r["messages"][0]["content"].split(".")[0] for r in rows)
    assert asked == ["Write 2 + 3 to /app/sum", "Write hello to /app/out"]  # .txt and .json
    noop, _ = _eval(tmp_path / "n", tasks, "policy.script=noop")
    assert noop["mean_reward"] == 0.0


def plants_its_own_tests(messages, info, rng) -> str:
    """Writes a test.sh of its own and a reward file, before the task's tests come in."""
    if messages[-1].role == "tool":
        return "Done."
    command = ("mkdir -p /tests /logs/verifier && echo 'echo 1 > /logs/verifier/reward.txt' "
               "> /tests/test.sh && echo 1 > /logs/verifier/reward.txt")  # fmt: skip
    return (
        f"<tool_call>{json.dumps({'name': 'bash', 'arguments': {'command': command}})}</tool_call>"
    )


def test_editing_the_tests_before_they_are_copied_in_gains_nothing(tasks, tmp_path):
    cheat, rows = _eval(
        tmp_path / "c", tasks, "policy.script=tests.envs.test_harbor:plants_its_own_tests"
    )
    assert cheat["mean_reward"] == 0.0, [r["info"].get("verifier") for r in rows]


def test_the_reward_gate_runs_on_it(tasks, capsys):
    assert main(["check", "env=harbor", f"env.path={tasks}", "tasks=2"]) == 0
    assert "the reward passed its check" in capsys.readouterr().out


def test_task_toml_is_read_as_harbors_own_models_read_it(tasks):
    harbor = Path(__file__).parents[2] / ".cache" / "harbor"
    if not (harbor / "harbor").is_dir():
        pytest.skip("harbor is not unpacked in .cache/harbor (bash scripts/setup.sh)")
    sys.path.insert(0, str(harbor))
    try:
        from harbor.models.task.config import TaskConfig
    finally:
        sys.path.remove(str(harbor))
    theirs = TaskConfig.model_validate_toml(TOML)
    ours = load_tasks(str(tasks / "hello"))[0]
    assert ours.agent_timeout_s == theirs.agent.timeout_sec
    assert ours.verifier_timeout_s == theirs.verifier.timeout_sec
    assert ours.build_timeout_s == theirs.environment.build_timeout_sec
    assert (ours.cpus, ours.memory_mb) == (theirs.environment.cpus, theirs.environment.memory_mb)


@pytest.mark.parametrize(
    "broken, said",
    [
        ("no_test", "has no tests/test.sh"),
        ("absent_base", "starts FROM 'agentgym/not-here:1'"),
        ("empty", "holds no Harbor task"),
    ],
)
def test_a_broken_task_folder_fails_before_any_episode(tmp_path, capsys, broken, said):
    folder = write_task(tmp_path, "t", "Do it.", TEST_TXT, "true\n")
    if broken == "no_test":
        (folder / "tests" / "test.sh").unlink()
    elif broken == "absent_base":
        (folder / "environment" / "Dockerfile").write_text("FROM agentgym/not-here:1\n")
    else:
        folder = tmp_path / "nothing"
        folder.mkdir()
    code = main(["eval", "env=harbor", f"env.path={folder}", f"out={tmp_path}/run"])
    assert code == 2 and said in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
