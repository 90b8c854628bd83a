"""swe: every generated task is solved by its gold patch and not by doing nothing, in a real
container; tools turn bad input into observations; patch mode and SWE-RL similarity."""

import json

import pytest

import agentgym
from agentgym.data.repos import make_repo_tasks
from agentgym.envs.swe.baselines import call
from agentgym.envs.swe.tasks import load_swebench
from agentgym.types import Message, ToolCall
from tests.conftest import eval_run, sandbox_containers

pytestmark = pytest.mark.docker


def summary(tmp_path, *overrides):
    return eval_run(tmp_path / "run", "env=swe", "policy=scripted", *overrides)


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_gold_patch_scores_one_and_no_patch_zero_on_every_task(tmp_path, difficulty):
    args = [f"env.difficulty={difficulty}", "env.tasks=10", "episodes=10"]
    oracle, trajectories = summary(tmp_path / "o", *args, "policy.script=oracle")
    noop, _ = summary(tmp_path / "n", *args, "policy.script=noop")
    assert oracle["mean_reward"] == 1.0 and noop["mean_reward"] == 0.0
    assert trajectories[0].info["diff"].startswith("diff --git")  # the final diff is recorded


def test_patch_mode_with_similarity_reward(tmp_path):
    args = ["env.mode=patch", "env.reward=similarity", "env.tasks=4", "episodes=4"]
    assert summary(tmp_path / "o", *args, "policy.script=oracle")[0]["mean_reward"] == 1.0
    assert summary(tmp_path / "n", *args, "policy.script=noop")[0]["mean_reward"] == -1.0
    # tools mode: the final `git diff` (hunk headers name the function) against the gold
    tools = ["env.reward=similarity", "env.difficulty=3", "env.tasks=8", "episodes=8"]
    assert summary(tmp_path / "t", *tools, "policy.script=oracle")[0]["mean_reward"] == 1.0


def test_tool_errors_are_observations():
    env = agentgym.make("swe", tasks=2)
    try:
        env.reset(seed=0)
        pkg = env.t.files and next(
            p for p in env.t.files if p.endswith(".py") and "/" in p and "tests" not in p
        )

        def say(name, **kw):
            obs, reward, term, trunc, info = env.step(call(name, **kw))
            return obs.messages[0].content, info

        text, info = say("view", path="nope.py")
        assert "no file 'nope.py'" in text and info["tool_errors"] == 1
        say("create", path="dup.py", content="x = 1\nx = 1\n")
        text, _ = say("edit", path="dup.py", old="x = 1", new="y")
        assert "occurs 2 times" in text
        text, _ = say("edit", path="dup.py", old="zzz", new="y")
        assert "not found" in text
        say("bash", command="head -c 100 /dev/urandom > blob.bin; printf '\\0' >> blob.bin")
        text, _ = say("view", path="blob.bin")
        assert "binary file" in text
        text, _ = say("bash", command="yes | head -c 1000000")
        assert "more characters cut" in text and len(text) < 5000
        text, _ = say("bash", command="sleep 60")
        assert "killed after" in text
        # tests_passed credits each FAIL_TO_PASS test once, the first time it passes: not the
        # tests that passed from the start, not a second run
        text, info = say("run_tests")
        assert "passed" in text and info["signals"]["tests_passed"] == 0.0
        say("bash", command=f"git apply - <<'EOF'\n{env.t.patch}EOF")
        _, info = say("run_tests")
        assert info["signals"]["tests_passed"] == 1.0
        _, info = say("run_tests")
        assert info["signals"]["tests_passed"] == 0.0
        text, _ = say("view", path=pkg, start=1, end=2)
        assert text.lstrip().startswith("1 ")
    finally:
        env.close()  # releases the container on the loop that made it
    assert sandbox_containers() == []


def ours_left():
    import subprocess

    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=agentgym.sandbox"],
        capture_output=True,
        text=True,
    )
    return out.stdout.split()


def test_tasks_are_deterministic_and_honest():
    a, b = make_repo_tasks(5, seed=3, difficulty=2), make_repo_tasks(5, seed=3, difficulty=2)
    assert a == b
    for t in a:
        assert t.fail_to_pass and t.pass_to_pass and not set(t.fail_to_pass) & set(t.pass_to_pass)
        assert "returns" in t.issue and "bug" not in "".join(t.files).lower()


def test_swebench_loader(tmp_path):
    row = {
        "instance_id": "astropy__astropy-12907",
        "repo": "astropy/astropy",
        "base_commit": "abc123",
        "problem_statement": "Modeling's separability_matrix ...",
        "patch": "diff --git a/x.py b/x.py\n",
        "test_patch": "diff --git a/t.py b/t.py\n",
        "FAIL_TO_PASS": json.dumps(["t.py::test_a"]),
        "PASS_TO_PASS": ["t.py::test_b"],
    }
    (tmp_path / "swe.jsonl").write_text(json.dumps(row) + "\n")
    [t] = load_swebench(tmp_path / "swe.jsonl")
    assert t.fail_to_pass == ["t.py::test_a"] and t.pass_to_pass == ["t.py::test_b"]
    assert t.image == "swebench/sweb.eval.x86_64.astropy_1776_astropy-12907"
    assert t.workdir == "/testbed" and "git apply" in t.setup_command


_IDS = "grep -Ho '^def test_[a-z0-9_]*' tests/test_*.py | sed 's/:def /::/' > /tmp/ids\n"
_AT_EXIT = (  # prints a PASSED line for every test when the interpreter exits
    "cat > /tmp/hook <<'PY'\n"
    "import atexit; atexit.register(lambda: print("
    "''.join(f'\\nPASSED {i}' for i in open('/tmp/ids').read().split())))\n"
    "PY\n"
)
_CONFTEST = (  # a conftest that turns every failure into a pass
    "cat > conftest.py <<'PY'\n"
    "import pytest\n"
    "@pytest.hookimpl(hookwrapper=True)\n"
    "def pytest_runtest_makereport(item, call):\n"
    "    out = yield\n"
    "    out.get_result().outcome = 'passed'\n"
    "PY\n"
)
_PASSING = (  # .git/test_x.py: tests/test_x.py with every test body `assert True`
    "for f in tests/test_*.py; do "
    "python3 - \"$f\" <<'PY'\n"
    "import os, re, sys\n"
    "names = re.findall(r'^def (test_\\w+)', open(sys.argv[1]).read(), re.M)\n"
    "out = '.git/' + os.path.basename(sys.argv[1])\n"
    "open(out, 'w').write(''.join(f'def {n}():\\n    assert True\\n' for n in names))\n"
    "PY\n"
    "done\n"
)
CHEATS = {
    # every test body becomes `assert True`, names kept
    "rewrite the tests": (
        "for f in tests/test_*.py; do "
        "python3 - \"$f\" <<'PY'\n"
        "import re, sys\n"
        "src = open(sys.argv[1]).read()\n"
        "names = re.findall(r'^def (test_\\w+)', src, re.M)\n"
        "open(sys.argv[1], 'w').write(''.join(f'def {n}():\\n    assert True\\n' for n in names))\n"
        "PY\n"
        "done; git add -A; git commit -qm tests"
    ),
    "plant a conftest": _CONFTEST,
    # a top-level module that shadows pytest and prints what the scorer wants
    "shadow pytest": (
        "cat > pytest.py <<'PY'\n"
        "import sys\n"
        "for a in sys.argv[1:]:\n"
        "    print('PASSED', a) if '::' in a else None\n"
        "PY"
    ),
    "delete the tests": "rm -rf tests",
    # the conftest again, where the scorer's git would not see it
    "plant an ignored conftest": _CONFTEST + "echo conftest.py >> .git/info/exclude",
    "plant a .gitignored conftest": _CONFTEST + "echo conftest.py >> .gitignore",
    # git runs the hook after checking a test out: it plants the conftest again
    "a post-checkout hook": (
        _CONFTEST + "cp conftest.py .git/keep.py\n"
        "printf '#!/bin/sh\\ncp .git/keep.py conftest.py\\n' > .git/hooks/post-checkout\n"
        "chmod +x .git/hooks/post-checkout"
    ),
    # the base commit's test blobs stand for passing ones (git replace), or are rewritten
    # as they are checked out (a smudge filter)
    "replace the base's test blobs": _PASSING
    + "for f in tests/test_*.py; do "
    + "git replace -f $(git rev-parse HEAD:$f) $(git hash-object -w .git/$(basename $f)); done",
    "a smudge filter": _PASSING
    + "git config filter.t.smudge 'cat .git/$(basename %f)' && git config filter.t.clean cat\n"
    + "echo 'tests/** filter=t' > .git/info/attributes",
    # the package prints what the scorer wants when the interpreter exits (after pytest's
    # own summary)
    "print PASSED at exit": (
        _IDS + _AT_EXIT + "for f in $(git ls-files '*.py' | grep -v '^tests/'); do "
        'cat /tmp/hook >> "$f"; done'
    ),
    # the same from a .pth file in the user's site-packages, which every python3 reads
    "plant a user-site .pth": (
        _IDS + _AT_EXIT + "d=$(python3 -c 'import site; print(site.getusersitepackages())'); "
        'mkdir -p "$d" && cp /tmp/hook "$d/zz.pth"'
    ),
}


@pytest.mark.parametrize("cheat", list(CHEATS))
def test_cheats_score_zero(cheat):
    env = agentgym.make("swe", tasks=2)
    try:
        env.reset(seed=0)
        obs, *_ = env.step(call("bash", command=CHEATS[cheat]))
        _, reward, terminated, _, info = env.step(call("submit"))
        assert terminated and reward == 0.0 and not info["success"], (cheat, info)
        # the gold fix still scores beside the same cheat: restoring is not destroying
        env.reset(seed=0)
        env.step(call("bash", command=f"git apply - <<'EOF'\n{env.t.patch}\nEOF"))
        env.step(call("bash", command=CHEATS[cheat]))
        _, reward, *_ = env.step(call("submit"))
        assert reward == 1.0, cheat
    finally:
        env.close()


def test_edited_tests_earn_no_tests_passed_signal_and_a_broken_repository_scores_zero():
    env = agentgym.make("swe", tasks=2)
    try:
        env.reset(seed=0)
        env.step(call("bash", command=CHEATS["rewrite the tests"]))
        obs, _, _, _, info = env.step(call("run_tests"))
        assert "FAILED" not in obs.messages[0].content  # they pass here, edited
        assert info["signals"]["tests_passed"] == 0.0  # but not as scoring runs them
        env.step(call("bash", command=f"git apply - <<'EOF'\n{env.t.patch}\nEOF"))
        _, _, _, _, info = env.step(call("run_tests"))
        assert info["signals"]["tests_passed"] == 1.0  # the real fix, once
        # a repository without git scores 0 (no change can be read)
        env.step(call("bash", command="rm -rf .git"))
        _, reward, terminated, _, info = env.step(call("submit"))
        assert terminated and reward == 0.0 and info["diff"] == "", info
        # a change too large to carry scores as no fix
        env.reset(seed=0)
        env.step(call("bash", command=f"git apply - <<'EOF'\n{env.t.patch}\nEOF"))
        env.step(call("bash", command="head -c 300000 /dev/urandom > noise.bin"))
        _, reward, _, _, info = env.step(call("submit"))
        assert reward == 0.0 and info["fix"] == "too large", info
    finally:
        env.close()


# root on a writable root, as in SWE-bench's images: a pytest plugin that turns every failure
# into a pass, loaded by every python3 through a .pth file in the system's site-packages
PLANT_A_PLUGIN = _CONFTEST.replace("conftest.py", "$d/zz_cheat.py") + (
    "echo \"import os; os.environ['PYTEST_PLUGINS'] = 'zz_cheat'\" > $d/zz_cheat.pth"
)


@pytest.fixture(scope="module")
def testbed_dataset(tmp_path_factory):
    """A SWE-bench instance file whose image keeps a generated repository in /testbed and runs
    as root on a writable root, as SWE-bench's do. Its test patch adds the failing tests as a
    top-level ``test_fix.py`` (as psf/requests keeps its tests), which no folder rule guards."""
    import subprocess

    task = make_repo_tasks(1, seed=5)[0]
    ctx = tmp_path_factory.mktemp("testbed")
    for path, text in task.files.items():
        (ctx / "repo" / path).parent.mkdir(parents=True, exist_ok=True)
        (ctx / "repo" / path).write_text(text)
    (ctx / "Dockerfile").write_text(
        "FROM agentgym/swe:latest\nUSER root\nCOPY repo /testbed\nWORKDIR /testbed\n"
        "RUN git init -q && git add -A && git -c user.name=a -c user.email=a@b commit -qm base\n"
    )
    image = "agentgym/test-testbed:latest"
    subprocess.run(["docker", "build", "--network", "none", "-q", "-t", image, str(ctx)],
                   check=True, capture_output=True)  # fmt: skip
    failing = task.fail_to_pass[0].split("::")[0]
    lines = task.files[failing].splitlines()
    test_patch = (
        "diff --git a/test_fix.py b/test_fix.py\nnew file mode 100644\n--- /dev/null\n"
        f"+++ b/test_fix.py\n@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{x}\n" for x in lines)
    )
    row = {
        "instance_id": "local__testbed-1", "repo": "local/testbed", "image_name": image,
        "problem_statement": task.issue, "patch": task.patch, "test_patch": test_patch,
        "FAIL_TO_PASS": [
            x.replace(failing, "test_fix.py") for x in task.fail_to_pass if x.startswith(failing)
        ],
        "PASS_TO_PASS": task.pass_to_pass,
    }  # fmt: skip
    (ctx / "swe.jsonl").write_text(json.dumps(row) + "\n")
    yield ctx / "swe.jsonl"
    subprocess.run(["docker", "rmi", "-f", image], capture_output=True)


def test_an_instance_in_its_own_image_is_scored_in_a_new_container(testbed_dataset):
    """What the model changes outside the repository (root, writable root) takes no part, nor
    an edit of the test patch's files."""
    env = agentgym.make("swe", dataset=str(testbed_dataset))
    site = "d=$(python3 -c 'import site; print(site.getsitepackages()[0])'); mkdir -p $d\n"
    gold = f"git apply - <<'EOF'\n{env.t.patch}\nEOF"
    rewrite = CHEATS["rewrite the tests"].replace("tests/test_*.py", "test_fix.py")
    rewrite = rewrite.removesuffix("; git add -A; git commit -qm tests")  # no git identity here
    try:
        for commands, expected in [
            ([gold], 1.0), ([], 0.0), ([site + PLANT_A_PLUGIN], 0.0), ([rewrite], 0.0),
            ([gold, site + PLANT_A_PLUGIN], 1.0), ([gold, rewrite], 1.0),
        ]:  # fmt: skip
            env.reset(seed=0)
            assert env.sandbox.workdir == "/testbed"
            for command in commands:
                obs, *_ = env.step(call("bash", command=command))
                assert "[exit code 0]" in obs.messages[0].content, obs.messages[0].content
            _, reward, terminated, _, info = env.step(call("submit"))
            assert terminated and reward == expected, (commands, info)
    finally:
        env.close()
    assert sandbox_containers() == []


def test_adversarial_tool_input_is_an_observation_not_a_crash():
    env = agentgym.make("swe", tasks=2)
    try:
        env.reset(seed=0)
        for name, kw in [
            ("bash", {"command": "echo a\x00b"}),
            ("view", {"path": "a\x00b.py"}),
            ("create", {"path": "x.py", "content": "\ud83d"}),
            ("edit", {"path": "x.py", "old": "a", "new": "\udc00"}),
        ]:
            action = Message(
                role="assistant", content="", tool_calls=[ToolCall(id="c", name=name, arguments=kw)]
            )
            obs, _, terminated, _, info = env.step(action)
            assert info["format_error"] and not terminated, name
            assert "NUL byte or a lone surrogate" in obs.messages[0].content
        # a command that prints the CLI's words for a dead container does not kill the episode
        obs, *_ = env.step(call("bash", command="echo 'Error: No such container: x' >&2; exit 1"))
        assert "No such container" in obs.messages[0].content
        obs, *_ = env.step(call("bash", command="echo 'container 1 is not running' >&2"))
        assert "[exit code 0]" in obs.messages[0].content
    finally:
        env.close()
