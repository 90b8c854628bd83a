"""Chaos: a real component frozen (SIGSTOP) or killed (SIGKILL) in the middle of a real eval
run fails the run within its deadline naming the component, or costs only the episodes in
flight; the rerun completes the evaluation to the episodes asked for, with no episode lost or
played twice, and (where the policy is deterministic) each reward as in an uninterrupted run.

Each case runs ``agentgym eval`` in a subprocess, waits until episodes are being written,
signals the component's processes (found among the run's descendants), and checks the exit,
the message, the seconds to detect and the rerun.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentgym.rollout import read_trajectories

psutil = pytest.importorskip("psutil")
PLUGIN = Path(__file__).parent / "plugin_pkg"
VLLM_ENGINE = (
    "policy.engine={dtype: float32, max_model_len: 4096, gpu_memory_utilization: 0.2, "
    "enforce_eager: true, max_num_batched_tokens: 16384}"
)


def eval_command(out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "agentgym.cli", "eval", f"out={out}", *args]


def vllm_eval(out: Path, model: Path, *more: str) -> list[str]:
    """48 episodes of guess_number, the tiny model on the in-process vLLM engine."""
    return eval_command(out, "env=guess_number", "policy=vllm", f"policy.model={model}",
                        "policy.max_new_tokens=48", "episodes=48", "group_size=4", VLLM_ENGINE,
                        *more)  # fmt: skip


def written(out: Path) -> int:
    path = out / "trajectories.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def run_with_fault(
    command: list[str], out: Path, component: Callable[[Any], bool], sig: int, after: int
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``command``; once ``after`` episodes are written, send ``sig`` to every descendant
    for which ``component(process)`` holds; (the finished run, seconds from signal to exit)."""
    env = {k: v for k, v in os.environ.items() if k != "VLLM_RPC_BASE_PATH"}
    env["TMPDIR"] = tempfile.mkdtemp()  # short: vLLM's socket paths are < 108
    log = out.parent / f"{out.name}.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, text=True,
                                env=env, start_new_session=True)  # fmt: skip
    hit: list[Any] = []
    try:
        deadline = time.monotonic() + 400
        while written(out) < after and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, f"the run ended before the fault:\n{log.read_text()[-2000:]}"
        hit = [p for p in psutil.Process(proc.pid).children(recursive=True) if component(p)]
        assert hit, "no such component among the run's processes"
        for p in hit:
            p.send_signal(sig)
        t0 = time.monotonic()
        proc.wait(timeout=180)  # a hang fails here
        seconds = time.monotonic() - t0
    finally:
        for p in hit:  # a stopped process: let it go
            with_suppress(lambda p=p: (p.send_signal(signal.SIGCONT), p.kill()))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    print(f"chaos: {out.parent.name}: the run ended {seconds:.1f} s after the fault")
    return subprocess.CompletedProcess(command, proc.returncode, log.read_text(), ""), seconds


def with_suppress(fn: Callable[[], object]) -> None:
    try:
        fn()
    except psutil.Error:
        pass


def rerun_completes(command: list[str], out: Path, episodes: int) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TMPDIR": tempfile.mkdtemp()})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    keys = [t.key for t in read_trajectories(out / "trajectories.jsonl")]
    assert len(keys) == len(set(keys)) == episodes  # none lost, none twice
    assert all(t.stop_reason != "error" for t in read_trajectories(out / "trajectories.jsonl"))


GUI = ("env=gui", "env.observation=tree", "policy=scripted", "episodes=24")


@pytest.fixture(scope="module")
def gui_rewards(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, int], float]:
    """Each episode's reward in an uninterrupted run of the chaos tests' gui eval."""
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    subprocess.run(eval_command(out, *GUI), check=True, capture_output=True, timeout=600)
    return rewards(out)


def failed_rows(out: Path) -> int:
    return sum(t.stop_reason == "error" for t in read_trajectories(out / "trajectories.jsonl"))


def rewards(out: Path) -> dict[tuple[int, int], float]:
    return {t.key: t.reward for t in read_trajectories(out / "trajectories.jsonl")}


def process(*names: str, in_cmdline: str = "") -> Callable[[Any], bool]:
    """Whether a process's name holds one of ``names`` (or its command line ``in_cmdline``)."""

    def match(p: Any) -> bool:
        try:
            name = p.name().lower()
            return any(n in name for n in names) or bool(
                in_cmdline and in_cmdline in " ".join(p.cmdline())
            )
        except psutil.Error:
            return False

    return match


is_env_actor = process("_envactor", in_cmdline="_EnvActor")
is_ray = process("ray", in_cmdline="/ray/")  # GCS, raylet, workers, actors
is_engine_core = process("enginecore", in_cmdline="EngineCore")
is_chromium = process("chrom", "headless_shell")


@pytest.mark.vllm
@pytest.mark.slow
def test_a_frozen_vllm_engine_core_fails_the_run_naming_the_policy(tiny_model, tmp_path):
    out = tmp_path / "run"
    command = vllm_eval(out, tiny_model, "rollout.stall_timeout_s=20")
    done, seconds = run_with_fault(command, out, is_engine_core, signal.SIGSTOP, after=4)
    assert done.returncode != 0
    assert "no episode made progress for 20 s" in done.stdout, done.stdout[-3000:]
    assert "VLLMPolicy.generate" in done.stdout  # the frozen component, by name
    assert seconds < 120
    rerun_completes(command, out, 48)


@pytest.mark.browser
@pytest.mark.slow
def test_a_frozen_chromium_fails_the_run_naming_the_browser(tmp_path, gui_rewards):
    out = tmp_path / "run"
    command = eval_command(out, *GUI, "rollout.stall_timeout_s=10")
    done, seconds = run_with_fault(command, out, is_chromium, signal.SIGSTOP, after=2)
    assert done.returncode != 0
    assert "no episode made progress for 10 s" in done.stdout, done.stdout[-3000:]
    assert "waiting on the browser (Chromium)" in done.stdout  # not a line of playwright's
    assert seconds < 90
    rerun_completes(command, out, 24)
    assert rewards(out) == gui_rewards  # as if nothing had happened


@pytest.mark.vllm
@pytest.mark.slow
def test_a_killed_vllm_engine_core_stops_the_run_at_once_with_its_cause(tiny_model, tmp_path):
    out = tmp_path / "run"
    command = vllm_eval(out, tiny_model)
    done, seconds = run_with_fault(command, out, is_engine_core, signal.SIGKILL, after=4)
    assert done.returncode != 0 and seconds < 60
    assert "the vLLM engine core died" in done.stdout, done.stdout[-3000:]
    assert failed_rows(out) <= 8  # the episodes in flight, no more
    rerun_completes(command, out, 48)


@pytest.mark.browser
@pytest.mark.slow
def test_a_killed_chromium_fails_only_the_episodes_in_flight_and_the_rerun_completes(
    tmp_path, gui_rewards
):
    out = tmp_path / "run"
    command = eval_command(out, *GUI, "rollout.max_failure_rate=0.5")
    done, _ = run_with_fault(command, out, is_chromium, signal.SIGKILL, after=2)
    assert done.returncode == 0, done.stdout[-3000:]  # the next episodes got a new browser
    assert 0 < failed_rows(out) <= 8  # those in flight, no more
    rerun_completes(command, out, 24)
    assert rewards(out) == gui_rewards


def ray_eval(out: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """40 episodes of the test plugin's env, each in a Ray actor of a local Ray instance."""
    monkeypatch.setenv("PYTHONPATH", f"{PLUGIN}:{os.environ.get('PYTHONPATH', '')}")
    return eval_command(out, "env=count_import", "import=agentgym_testplugin", "env.delay=0.5",
                        "policy=scripted", "episodes=40", "rollout.backend=ray",
                        "rollout.concurrency=4")  # fmt: skip


@pytest.mark.ray
@pytest.mark.slow
def test_a_killed_env_actor_loses_its_episode_only_and_the_rerun_plays_it(tmp_path, monkeypatch):
    out = tmp_path / "run"
    command = ray_eval(out, monkeypatch)
    done, _ = run_with_fault(command, out, is_env_actor, signal.SIGKILL, after=4)
    assert done.returncode == 0, done.stdout[-3000:]  # within the failure budget
    assert 0 < failed_rows(out) <= 4
    rerun_completes(command, out, 40)
    assert set(rewards(out).values()) == {1.0}


@pytest.mark.ray
@pytest.mark.slow
def test_a_dead_ray_instance_ends_the_run_naming_its_gcs(tmp_path, monkeypatch):
    out = tmp_path / "run"
    command = ray_eval(out, monkeypatch)
    # Ray's own wait for a dead GCS: 60 s by default (the README's figure), 10 s here
    monkeypatch.setenv("RAY_gcs_rpc_server_reconnect_timeout_s", "10")
    done, seconds = run_with_fault(command, out, is_ray, signal.SIGKILL, after=4)
    assert done.returncode != 0 and seconds < 120
    assert "Failed to connect to GCS" in done.stdout, done.stdout[-3000:]
    rerun_completes(command, out, 40)
