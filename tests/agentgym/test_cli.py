import json
import re
from pathlib import Path

import pytest

from agentgym.cli import load_eval_config, main
from agentgym.errors import ConfigError


def test_envs_lists_the_example(capsys):
    assert main(["envs"]) == 0
    assert "guess_number" in capsys.readouterr().out


def test_scripted_oracle_and_random_baselines_discriminate(tmp_path):
    assert main(["eval", "episodes=12", "group_size=3", f"out={tmp_path}/o"]) == 0
    assert (
        main(["eval", "policy.script=random", "episodes=12", "group_size=3", f"out={tmp_path}/r"])
        == 0
    )
    oracle = json.loads((tmp_path / "o" / "summary.json").read_text())
    rand = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert oracle["success_rate"] == 1.0 and rand["success_rate"] < 0.5
    assert set(oracle["pass_at_k"]) == {"1", "2", "3"}


@pytest.mark.parametrize(
    "overrides, key, fix",
    [
        (["policy.modle=x"], "policy.modle", "valid keys: name, script"),
        (["policy=hf", "policy.modle=x"], "policy.modle", "did you mean 'model'"),
        (["policy=hf"], "policy.model", "policy.model=<path"),
        (["policy=hf", "policy.model=./nope"], "policy.model", "agentgym.testing"),
        (["policy=hf", "policy.model=/x", "policy.temperature=-1"], "policy.temperature", ""),
        (["policy=gpt"], "policy", "use one of hf, openai, scripted, vllm"),
        (["env=guess_numbr"], "env", "Did you mean 'guess_number'"),
        (["env.hgh=3"], "env.hgh", "did you mean 'high'"),
        (["episodes=5", "group_size=2"], "episodes", "tasks x group_size"),
        (["episodes=zero"], "episodes", ""),
        (["rollout.max_tokns=3"], "rollout.max_tokns", "did you mean 'max_tokens'"),
        (["policy.script=nope"], "policy.script", "oracle, random"),
        (["import=no_such_module_xyz"], "import", "cannot import module 'no_such_module_xyz'"),
        (["novalue"], "novalue", "key=value"),
    ],
)
def test_bad_config_fails_before_work_naming_key_and_fix(overrides, key, fix, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["eval", *overrides, f"out={out}"]) == 2
    err = capsys.readouterr().err
    assert f"config key '{key}'" in err and fix in err
    assert not out.exists(), "no work may start on a bad config"


def test_resume_refuses_a_different_config(tmp_path):
    assert main(["eval", "episodes=2", f"out={tmp_path}"]) == 0
    with pytest.raises(ConfigError, match="'env'"):
        from agentgym.cli import run_eval

        run_eval(load_eval_config(["episodes=2", "env.high=10", f"out={tmp_path}"]))


def test_envs_lists_the_others_when_one_plugin_is_broken(capsys):
    from agentgym import registration

    registration.register("broken_plugin_env", "collections:OrderedDict")
    try:
        assert main(["envs"]) == 0
        out = capsys.readouterr().out
        assert "guess_number" in out and "cannot load" in out
    finally:
        del registration._registry["broken_plugin_env"]


@pytest.mark.parametrize(
    "command, key, fix",
    [
        (["train", "policy.model=FILE"], "policy.model", "not a model folder"),
        (["train", "policy.model=EMPTY"], "policy.model", "not a model folder"),
        (["train", "policy.model=TINY", "init=EMPTY"], "init", "not a model folder"),
        (["train", "policy.model=TINY", "device=bogus"], "device", "cuda:N"),
        (["train", "policy.model=TINY", "device=cuda"], "device", "device=cpu"),
        (
            ["train", "policy.model=TINY", "policy.engine={bogus_arg: 1}"],
            "policy.engine.bogus_arg",
            "AsyncEngineArgs",
        ),
        (
            ["train", "policy.model=TINY", "policy.engine={max_model_length: 1}"],
            "policy.engine.max_model_length",
            "len'",
        ),
        (["train", "policy.model=TINY", "learner.lr=[1"], "learner.lr", "not valid YAML"),
        (
            ["train", "policy.model=TINY", "learner.lora.targets=[x]"],
            "learner.lora.targets",
            "target_",
        ),
        (["train", "policy.model=TINY", "out=FILE"], "out", "cannot write the run directory"),
        (["eval", "env=guess_number", "out=FILE"], "out", "cannot write the run directory"),
        (["eval", "policy=hf", "policy.model=FILE"], "policy.model", "not a model folder"),
        (["eval", "policy=hf", "policy.model=TINY", "policy.device=gpu"], "policy.device", ""),
        (
            ["eval", "policy=vllm", "policy.model=TINY", "policy.engine={x: 1}"],
            "policy.engine.x",
            "",
        ),
        (["eval", "policy=openai", "policy.base_url=notaurl"], "policy.base_url", "http"),
        (["sft", "data=FILE", "model=EMPTY"], "model", "not a model folder"),
        (["sft", "data=FILE", "model=TINY", "device=cuda:0"], "device", "CUDA"),
    ],
)
def test_malformed_invocations_fail_at_once_in_one_line(
    command, key, fix, tiny_model, tmp_path, capsys
):
    import time

    if key == "device" and "cuda" in command[-1]:
        if pytest.importorskip("torch").cuda.is_available():
            pytest.skip("CUDA is here")
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "empty").mkdir()
    paths = {"FILE": tmp_path / "file", "EMPTY": tmp_path / "empty", "TINY": tiny_model}
    args = [next((a.replace(k, str(v)) for k, v in paths.items() if k in a), a) for a in command]
    if not any(a.startswith("out=") for a in args):
        args.append(f"out={tmp_path / 'run'}")
    t = time.perf_counter()
    assert main(args) == 2
    assert time.perf_counter() - t < 5
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"config key '{key}" in err and fix in err, err


def test_a_recipe_is_a_saved_set_of_overrides_that_the_command_line_beats(tmp_path):
    from agentgym.config import compose

    recipe = tmp_path / "mine.yaml"
    recipe.write_text("env: guess_number\nenv.high: 7\nepisodes: 6\npolicy:\n  script: random\n")
    tree = compose("eval", [f"recipe={recipe}", "episodes=4"], {"env": "id", "policy": "name"})
    assert tree["env"]["id"] == "guess_number" and tree["env"]["high"] == 7
    assert tree["episodes"] == 4 and tree["policy"]["script"] == "random"
    with pytest.raises(ConfigError, match=r"'recipe'.*deep_research_smollm2"):
        compose("train", ["recipe=nope"], {"env": "id"})


def test_train_speaks_evals_words_and_the_old_spellings_still_work_with_a_warning(
    tiny_model, tmp_path, capsys
):
    from agentgym.cli import load_train_config
    from agentgym.errors import DeprecatedSpelling

    new = load_train_config(
        [f"policy.model={tiny_model}", "policy=vllm", "policy.temperature=0.5",
         "policy.engine={max_model_len: 512}", "learner.lr=0.1", f"out={tmp_path}"]
    )  # fmt: skip
    with pytest.warns(DeprecatedSpelling, match=r"backend= is spelled policy=") as caught:
        old = load_train_config(
            [f"model={tiny_model}", "backend=vllm", "sampling.temperature=0.5",
             "engine={max_model_len: 512}", "trainer.lr=0.1", f"out={tmp_path}"]
        )  # fmt: skip
    assert old == new and len(caught) == 5
    assert new.policy.name == "vllm" and new.policy.sampling().temperature == 0.5
    # the command prints each old spelling as one line and goes on
    assert main(["train", f"model={tiny_model}", "trainer.steps=0", f"out={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "deprecated: model= is spelled policy.model= now" in err, err
    assert main(["train", "sampling=5", f"out={tmp_path}"]) == 2  # one line, no traceback
    assert "config key 'sampling': expected a group of settings" in capsys.readouterr().err


def test_a_checkpoint_written_under_the_old_spellings_still_resumes(tmp_path):
    from agentgym.trainers.checkpoint import check_resume, run_config
    from agentgym.trainers.grpo.config import respelled

    tree = {"policy": {"name": "hf", "model": "m", "top_p": 0.9}, "learner": {"lr": 1.0}}
    old = {"backend": "hf", "model": "m", "sampling.top_p": 0.9, "trainer.lr": 1.0}
    assert run_config(tree) == {"policy.name": "hf", "policy.model": "m", "policy.top_p": 0.9,
                                "learner.lr": 1.0}  # fmt: skip
    (tmp_path / "step_000001").mkdir(parents=True)
    (tmp_path / "step_000001" / "state.json").write_text(json.dumps({"config": old}))
    check_resume(tmp_path / "step_000001", tree, respelled)  # the same run, old words
    with pytest.raises(ConfigError, match=r"policy\.top_p"):
        changed = {**tree, "policy": {**tree["policy"], "top_p": 1}}
        check_resume(tmp_path / "step_000001", changed, respelled)


def explode(messages, info, rng):
    raise RuntimeError("the disk is on fire")


def test_a_fault_in_every_episode_ends_eval_in_one_line_with_the_traceback_in_a_file(
    tmp_path, capsys
):
    script = f"policy.script={__name__}:explode"
    assert main(["eval", "env=guess_number", script, "episodes=4", f"out={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert re.search(
        r"env 'agentgym/guess_number-v0', task \d: RuntimeError: the disk is on fire", err
    )
    log = err.rsplit("(traceback: ", 1)[1].rstrip(")")
    assert "Traceback" in open(log).read() and "explode" in open(log).read()


@pytest.mark.parametrize(
    "command",
    [
        ["eval", "env=gui_action", "policy=hf", "policy.model=TINY"],
        ["eval", "env=gui", "env.screenshot=true", "policy=vllm", "policy.model=TINY"],
        ["train", "env=gui_action", "policy.model=TINY"],
    ],
)
def test_a_text_only_policy_on_an_env_that_shows_images_fails_at_once(
    command, tiny_model, tmp_path, capsys
):
    args = [a.replace("TINY", str(tiny_model)) for a in command]
    assert main([*args, f"out={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "config key 'policy'" in err and "reads text only" in err and "mode=chat" in err


def test_envs_shows_one_envs_keys_and_defaults_from_its_config_model(capsys):
    assert main(["envs", "deep_research"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "world_size" in out and "2000" in out and "entities (= pages)" in out
    assert "untagged_tool_calls" in out and "max_turns" in out
    assert main(["envs", "nope"]) == 2


def test_a_vision_language_model_on_vllm_is_refused_with_the_reason(
    tiny_vision_model, tmp_path, capsys
):
    assert main(["train", "env=gui_action", f"policy.model={tiny_vision_model}",
                 f"out={tmp_path}"]) == 2  # fmt: skip
    err = " ".join(capsys.readouterr().err.split())
    assert "policy=vllm does not send images yet" in err and "torchvision" in err
    assert "use policy=hf" in err


def test_a_missing_gui_action_dataset_fails_before_work(tmp_path, capsys):
    missing = tmp_path / "screenspot.json"
    assert main(["eval", "env=gui_action", f"env.dataset={missing}", f"out={tmp_path}"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "config key 'env.dataset'" in err and "no such file" in err


@pytest.mark.parametrize(
    "model, overrides, key, fix",
    [
        ("tiny_model", ["env=digits", "cold_start.episodes=8"], "cold_start.baseline",
         "baselines (none)"),
        ("tiny_model", ["learner.fsdp=true", "learner.lora.rank=8"], "learner.fsdp",
         "drop learner.fsdp"),
        ("tiny_model", ["learner.ranks=0"], "learner.ranks", ""),
        ("tiny_vision_model", ["learner.fsdp=true"], "learner.fsdp", "each rank holds a replica"),
    ],
)  # fmt: skip
def test_bad_train_config_fails_before_work_naming_key_and_fix(
    model, overrides, key, fix, request, tmp_path, capsys
):
    out = tmp_path / "run"
    path = request.getfixturevalue(model)
    args = ["train", "policy=hf", f"policy.model={path}", f"out={out}", *overrides]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"config key '{key}'" in err and fix in err, err
    assert not out.exists(), "no work may start on a bad config"


@pytest.mark.models
def test_a_recipe_finds_its_packaged_model_from_any_directory(tmp_path, monkeypatch):
    from agentgym.trainers.grpo.config import load_train_config

    monkeypatch.chdir(tmp_path)
    cfg = load_train_config(["recipe=deep_research_smollm2"])
    assert Path(str(cfg.policy.model)).is_absolute()
    assert str(cfg.policy.model).endswith(".cache/models/smollm2-135m-instruct")


def test_sigterm_ends_an_eval_at_once_keeping_its_finished_episodes(tmp_path):
    """A scheduler's SIGTERM ends every command as Ctrl-C does: at once, 130, no asyncio
    noise, the finished episodes kept whole (a rerun resumes from them). Scripted episodes
    never wait: without a turn of the loop between episodes, the signal was never seen."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "agentgym.cli", "eval", "episodes=1000000", f"out={out}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    written = out / "trajectories.jsonl"
    try:
        deadline = time.monotonic() + 120
        while not (written.exists() and written.stat().st_size) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        code = proc.wait(timeout=60)
    finally:  # never leave a million-episode eval behind (it filled memory once)
        proc.kill()
    assert code == 130
    took, err = time.monotonic() - sent, proc.stderr.read() if proc.stderr else ""
    assert took < 10 and "interrupted" in err, (took, err)
    assert "Task was destroyed" not in err and "Traceback" not in err, err
    kept = [json.loads(line) for line in written.read_text().splitlines()]  # none torn
    assert kept and all(t["stop_reason"] != "error" for t in kept)


@pytest.mark.skipif(not __import__("shutil").which("docker"), reason="no docker CLI")
def test_swe_refuses_before_any_episode_when_the_docker_daemon_is_down_or_frozen(
    tmp_path, monkeypatch, capsys
):
    import socket

    from agentgym.sandbox import docker

    out = tmp_path / "run"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/down.sock")
    assert main(["eval", "env=swe", "episodes=2", f"out={out}"]) == 2
    err = capsys.readouterr().err
    assert f"the Docker daemon at unix://{tmp_path}/down.sock is not running" in err, err
    assert "dockerd --storage-driver" in err and not out.exists()  # refused before any work
    frozen = socket.socket(socket.AF_UNIX)  # accepts, never answers
    frozen.bind(str(tmp_path / "frozen.sock"))
    frozen.listen()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/frozen.sock")
    monkeypatch.setattr(docker, "PING_TIMEOUT_S", 1.0)
    assert main(["eval", "env=swe", "env.backend=docker", "episodes=2", f"out={out}"]) == 2
    assert "did not answer within 1 s (frozen or overloaded)" in capsys.readouterr().err
    frozen.close()
    assert main(["eval", "env=swe", "env.backend=local", "episodes=2", f"out={out}"]) == 0


def test_eval_validates_its_policy_once_and_loads_the_env_class_once(tmp_path, monkeypatch):
    """The config holds the typed policy and the env class: the command builds from them
    (it parsed the policy dict again and loaded the class three times)."""
    from agentgym.cli import run_eval
    from agentgym.policies.config import ScriptedConfig
    from agentgym.registration import EnvSpec

    loads = []
    real = EnvSpec.load

    def counted(self):
        loads.append(self.id)
        return real(self)

    monkeypatch.setattr(EnvSpec, "load", counted)
    cfg = load_eval_config(["policy.script=random", "rollout.concurrency=1", f"out={tmp_path}"])
    assert isinstance(cfg.policy, ScriptedConfig) and cfg.policy.script == "random"
    assert run_eval(cfg)["episodes"] == 8
    assert loads == ["guess_number", "guess_number"]  # the config's, the one env's (make)
