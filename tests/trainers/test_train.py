"""The whole loop: it learns, it resumes exactly after a kill, and vLLM rollouts stay in sync."""

import json
import os
import signal
import subprocess
import sys
import time
from statistics import fmean

import pytest

import agentgym
from agentgym.cli import main
from tests.conftest import train_digits


def metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_grpo_learns_digits_on_cpu(tiny_model, tmp_path):
    code = train_digits(
        tiny_model,
        tmp_path,
        "trainer.steps=30",
        "learner.lr=2e-3",
        "policy.max_new_tokens=16",
        "trainer.save_every=100",
    )
    assert code == 0
    rewards = [m["reward_mean"] for m in metrics(tmp_path)]
    assert len(rewards) == 30
    assert fmean(rewards[:5]) < 0.15
    assert fmean(rewards[-5:]) > fmean(rewards[:5]) + 0.3, rewards
    assert (tmp_path / "checkpoints" / "step_000030" / "model.safetensors").exists()
    assert list((tmp_path / "tb").iterdir())


def _train_cmd(model, out, *extra):
    return [
        sys.executable,
        "-m",
        "agentgym.cli",
        "train",
        "env=digits",
        f"policy.model={model}",
        "policy=hf",
        "device=cpu",
        "trainer.steps=6",
        "trainer.save_every=2",
        "learner.lr=2e-3",
        "policy.max_new_tokens=16",
        f"out={out}",
        *extra,
    ]


@pytest.mark.slow
def test_kill_and_resume_continues_exactly(tiny_model, tmp_path):
    ref, run = tmp_path / "ref", tmp_path / "run"
    subprocess.run(_train_cmd(tiny_model, ref), check=True, capture_output=True, timeout=600)
    proc = subprocess.Popen(
        _train_cmd(tiny_model, run), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        done = (
            (run / "metrics.jsonl").read_text().count("\n")
            if (run / "metrics.jsonl").exists()
            else 0
        )
        if done >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (run / "checkpoints" / "latest").read_text() == "step_000002"
    subprocess.run(  # keeping fewer checkpoints is a setting a resume may change
        _train_cmd(tiny_model, run, "trainer.resume=true", "trainer.keep_checkpoints=2"),
        check=True,
        capture_output=True,
        timeout=600,
    )
    want, got = metrics(ref), metrics(run)
    assert [m["step"] for m in got] == list(range(6))
    for a, b in zip(want, got):
        assert a["reward_mean"] == b["reward_mean"], (a["step"], a["reward_mean"], b["reward_mean"])
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-5)
    steps = sorted(p.name for p in (run / "trajectories").iterdir())
    assert steps == [f"step_{i:06d}.jsonl" for i in range(6)]
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert kept == ["latest", "step_000004", "step_000006"]
    assert sorted(p.name for p in (ref / "checkpoints").iterdir())[-1] == "step_000006"


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.parametrize("weight_sync", ["broadcast", "disk"])
def test_vllm_rollouts_with_weight_sync_probe_every_step(tiny_model, tmp_path, capfd, weight_sync):
    code = main(
        [
            "train",
            f"policy.weight_sync={weight_sync}",
            "env=digits",
            f"policy.model={tiny_model}",
            "policy=vllm",
            "device=cpu",
            "trainer.steps=4",
            "learner.lr=2e-3",
            "policy.max_new_tokens=16",
            "trainer.sync_probe_tol=1e-3",
            f"out={tmp_path}",
            # no engine dtype: the engine computes in the learner's (fp32 here)
            "policy.engine={max_model_len: 2048, gpu_memory_utilization: 0.2, "
            "enforce_eager: true, max_num_batched_tokens: 16384}",
        ]
    )
    assert code == 0
    got = metrics(tmp_path)
    assert len(got) == 4 and all(m["sync_probe_gap"] < 1e-3 for m in got)
    trajs = [
        json.loads(line)
        for line in (tmp_path / "trajectories" / "step_000003.jsonl").read_text().splitlines()
    ]
    assert {t["policy_version"] for t in trajs} == {3}
    # the engine's copy of the weights is gone with the engine; the trained policy stays
    assert not (tmp_path / "policy").exists() and (tmp_path / "model").is_dir()
    # vLLM's own logging (engine start, every weight reload) goes to the run's log file
    printed = capfd.readouterr()
    assert "Loading weights took" not in printed.out + printed.err
    assert "Loading safetensors checkpoint shards" not in printed.err  # the engine's stderr
    assert "Loading weights took" in (tmp_path / "vllm.log").read_text()


def test_held_out_tasks_never_meet_training_tasks():
    from agentgym.trainers.grpo.heldout import EVAL_SEED

    env = agentgym.make("deep_research", world_size=200, tasks=40)

    def questions(seeds, split):
        return {env.reset(seed=s, options={"split": split})[1]["question_id"] for s in seeds}

    train = questions(range(0, 200), "train")  # every seed a long run could reach
    held = questions(range(EVAL_SEED, EVAL_SEED + 50), "eval")
    assert len(held) == 4  # holdout_fraction 0.1 of 40
    assert len(train) == 36
    assert not train & held
    env.close()


@pytest.mark.slow
def test_cold_start_then_grpo_with_held_out_evaluation(tiny_model, tmp_path):
    code = train_digits(
        tiny_model,
        tmp_path,
        "trainer.steps=4",
        "learner.lr=2e-3",
        "trainer.eval_tasks=16",
        "trainer.eval_every=2",
        "cold_start.episodes=64",
        "cold_start.baseline=tests.trainers.test_sft:_digits",
        "cold_start.lr=3e-3",
        "cold_start.epochs=4",
        "policy.max_new_tokens=16",
    )
    assert code == 0
    evals = [m for m in metrics(tmp_path) if "phase" in m]
    assert [(m["phase"], m["step"]) for m in evals] == [
        ("base", 0),
        ("sft", 0),
        ("grpo", 2),
        ("grpo", 4),
    ]
    assert evals[1]["eval_reward_mean"] > evals[0]["eval_reward_mean"] + 0.5, evals
    assert all(m["eval_tasks"] == 16 for m in evals)
    assert (tmp_path / "eval" / "base_step_000000" / "trajectories.jsonl").exists()
    assert (tmp_path / "cold_start" / "trajectories.jsonl").exists()
    steps = [m for m in metrics(tmp_path) if "reward_mean" in m]
    assert [m["step"] for m in steps] == [0, 1, 2, 3]


def _digits_train(model, out, *extra):
    small = ["learner.lr=2e-3", "trainer.group_size=2", "trainer.tasks_per_step=2",
             "policy.max_new_tokens=8"]  # fmt: skip
    return train_digits(model, out, *small, *extra)


@pytest.mark.slow
@pytest.mark.parametrize("lora", [False, True])
def test_checkpoints_and_the_final_model_load_in_every_policy(tiny_model, tmp_path, lora):
    out = tmp_path / "run"
    extra = ["learner.lora.rank=4"] if lora else []
    assert _digits_train(tiny_model, out, "trainer.steps=2", "trainer.save_every=2", *extra) == 0
    ckpt = out / "checkpoints" / "step_000002"
    loadable = ckpt / "merged" if lora else ckpt
    for model in (out / "model", loadable):
        code = main(
            ["eval", "env=digits", "policy=hf", f"policy.model={model}", "policy.max_new_tokens=4",
             "episodes=2", f"out={tmp_path / 'eval' / model.name}"]
        )  # fmt: skip
        assert code == 0, model
    # a checkpoint starts a new run (init=)
    assert _digits_train(tiny_model, tmp_path / "again", "trainer.steps=1", f"init={loadable}") == 0


def test_resume_refuses_other_settings_and_a_fresh_run_never_moves_the_old_one(
    tiny_model, tmp_path, capsys
):
    out = tmp_path / "run"
    small = ("trainer.steps=2", "trainer.save_every=1", "policy.max_new_tokens=4")
    assert train_digits(tiny_model, out, *small, "trainer.resume=true") == 0
    said = lambda: " ".join(capsys.readouterr().out.split())  # noqa: E731 - rich wraps lines
    assert "has no checkpoint yet: starting at step 0" in said()
    # another learning rate is another run: refused before any work, naming the key
    assert train_digits(tiny_model, out, *small, "trainer.resume=true", "learner.lr=0.5") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "'learner.lr'" in err and "1e-05" in err and "another out=" in err
    # more steps is the same run, continued
    more = ("trainer.steps=3", "trainer.save_every=1", "policy.max_new_tokens=4")
    assert train_digits(tiny_model, out, *more, "trainer.resume=true") == 0
    assert [m["step"] for m in metrics(out)] == [0, 1, 2]
    # a fresh run never moves or overwrites a run: refused, naming both ways on
    assert train_digits(tiny_model, out, *more, "trainer.resume=false") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "holds a run" in err and "another out=" in err and "drop trainer.resume" in err
    assert [m["step"] for m in metrics(out)] == [0, 1, 2]
    # the same command again goes on from the run (here: it is done)
    assert train_digits(tiny_model, out, *more) == 0
    assert [m["step"] for m in metrics(out)] == [0, 1, 2]


def test_a_second_process_on_the_same_out_fails_at_once(tiny_model, tmp_path):
    from agentgym import rundir
    from agentgym.errors import ConfigError

    with rundir.claim(tmp_path):
        cmd = _train_cmd(tiny_model, tmp_path)
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and f"(pid {os.getpid()})" in r.stderr, r.stderr
        assert time.perf_counter() - t < 30  # before loading any model
        with pytest.raises(ConfigError, match="another agentgym process"):
            with rundir.claim(tmp_path):
                pass
    with rundir.claim(tmp_path):  # released with its holder
        pass


def _vllm_processes() -> set[int]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return {int(line.split()[0]) for line in out.splitlines()[1:] if "VLLM::" in line}


@pytest.mark.vllm
@pytest.mark.slow
def test_sigterm_ends_a_vllm_run_without_orphans(tiny_model, tmp_path):
    before = _vllm_processes()
    cmd = [
        *_train_cmd(tiny_model, tmp_path, "trainer.steps=50"),
        "policy=vllm",
        "policy.engine={max_model_len: 1024, gpu_memory_utilization: 0.2, enforce_eager: true}",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (tmp_path / "metrics.jsonl").exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.2)
        assert _vllm_processes() - before, "the engine's processes should be running"
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        code = proc.wait(timeout=120)
    finally:
        proc.kill()
    assert code == 130
    took, err = time.monotonic() - sent, proc.stderr.read()
    assert "interrupted" in err and "Task was destroyed" not in err, err[-2000:]
    assert took < 10, took  # a scheduler kills after 30 s; the step in flight stops at once
    time.sleep(2)
    assert not _vllm_processes() - before, "vLLM processes outlived the run"


def screenspot(folder, n=4):
    """A ScreenSpot-style dataset: files (PNG) and base64 bytes (JPEG), xywh boxes."""
    import base64
    import io

    from PIL import Image, ImageDraw

    rows = []
    for i in range(n):
        img = Image.new("RGB", (320 + 40 * i, 240), "white")
        ImageDraw.Draw(img).rectangle([20 * i, 30, 20 * i + 60, 60], fill="navy")
        buf = io.BytesIO()
        img.save(buf, "PNG" if i % 2 else "JPEG")
        if i % 2:
            (folder / f"shot{i}.png").write_bytes(buf.getvalue())
            image = {"img_filename": f"shot{i}.png"}
        else:
            image = {"image": base64.b64encode(buf.getvalue()).decode()}
        rows.append({**image, "instruction": f"click button {i}", "bbox": [20 * i, 30, 60, 30]})
    (folder / "screenspot.json").write_text(json.dumps(rows))
    return folder / "screenspot.json"


@pytest.mark.slow
def test_grpo_trains_a_vision_language_policy_on_screenshots_and_resumes(
    tiny_vision_model, tmp_path
):
    """gui_action on a ScreenSpot-style file, the tiny Qwen2-VL sampling with hf: every
    screenshot is stored once beside the trajectories (none inline), the report shows them,
    the trained model is a vision-language folder again, and a resumed run goes on."""
    data = screenspot(tmp_path)
    out = tmp_path / "run"
    args = [
        "train", "env=gui_action", f"env.dataset={data}", "env.box_format=xywh", "policy=hf",
        f"policy.model={tiny_vision_model}", "device=cpu", "trainer.tasks_per_step=2",
        "trainer.group_size=2", "trainer.save_every=1", "policy.max_new_tokens=16", f"out={out}",
    ]  # fmt: skip
    assert main([*args, "trainer.steps=2"]) == 0
    assert main([*args, "trainer.steps=3", "trainer.resume=true"]) == 0
    assert [m["step"] for m in metrics(out)] == [0, 1, 2]
    assert all(m["trained_tokens"] > 0 for m in metrics(out))
    lines = [x for f in sorted((out / "trajectories").glob("*.jsonl")) for x in f.open()]
    assert len(lines) == 12 and not any("data:image" in x for x in lines)
    stored = sorted(p.name for p in (out / "trajectories" / "images").iterdir())
    shown = {json.loads(x)["images"][0].removeprefix("images/") for x in lines}
    assert stored == sorted(shown) and 1 <= len(stored) <= 4  # one file per screenshot
    assert {p.suffix for p in (out / "trajectories" / "images").iterdir()} == {".png", ".jpg"}
    assert 'src="trajectories/images/' in (out / "report.html").read_text()
    from agentgym.vision import ImageInputs

    assert ImageInputs.load(out / "model") is not None


@pytest.mark.slow
def test_a_run_driven_into_collapse_warns_and_rolls_back(tiny_model, tmp_path, capsys):
    """An absurd learning rate collapses the tiny model's entropy in one step: the next step
    warns, the run restores the last checkpoint that passed (step 0's) with the learning rate
    halved, and the step after samples from the restored weights again."""
    code = train_digits(
        tiny_model, tmp_path, "trainer.steps=3", "learner.lr=1.0", "policy.max_new_tokens=16",
        "trainer.tasks_per_step=2", "trainer.group_size=4", "trainer.on_collapse=rollback",
    )  # fmt: skip
    steps = [m for m in metrics(tmp_path) if "reward_mean" in m]
    first, warned, after = steps[0], steps[1], steps[2]
    assert "entropy_collapse" in warned["warnings"] and warned["rolled_back_to"] == 0
    assert after["entropy"] > 0.5 * first["entropy"]  # the weights of step 0 again
    assert after["lr"] == pytest.approx(0.5)
    assert "rolled back to step 0, learning rate halved to 0.5" in capsys.readouterr().out
    assert code in (0, 2)  # a later collapse may spend the rollbacks: a clear error then


@pytest.mark.slow
def test_a_healthy_run_raises_no_warning_and_builds_no_env_beyond_its_pool(
    tiny_model, tmp_path, monkeypatch
):
    """One episode in flight at a time: one environment in all. The sync probe's prompt
    comes from the pool (it built a second env of its own: a Chromium or a container)."""
    from agentgym.envs.digits import DigitsEnv

    built = []
    real = DigitsEnv.__init__

    def counted(self, **config):
        built.append(1)
        real(self, **config)

    monkeypatch.setattr(DigitsEnv, "__init__", counted)
    one = ["rollout.concurrency=1", "trainer.check_tasks=0"]  # the reward gate has its own
    assert _digits_train(tiny_model, tmp_path, "trainer.steps=4", *one) == 0
    assert all(m["warnings"] == [] for m in metrics(tmp_path))
    assert len(built) == 1


@pytest.mark.slow
def test_the_rft_control_fine_tunes_on_the_steps_own_successes(tiny_model, tmp_path):
    """trainer.objective=rft (the sft-only arm): the same sampled episodes as GRPO, an NLL
    update on the successful ones only (digits' success: every character a digit)."""
    assert _digits_train(tiny_model, tmp_path, "trainer.steps=3", "trainer.objective=rft") == 0
    steps = [m for m in metrics(tmp_path) if "reward_mean" in m]
    for m in steps:
        assert (m["trained_tokens"] > 0) == (m["success_rate"] > 0)
        assert "clip_frac" not in m or m["trained_tokens"] == 0
