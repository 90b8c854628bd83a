"""The wheel is the package: built from this tree, installed in a fresh virtual environment,
every module imports from it, ``env=remote`` plays a served environment, and the sandbox image
builds from the files it ships (no clone in sight)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed (the dependencies are this venv's, seen through
    a path entry: nothing downloads); returns its bin folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    tree = tmp / "tree"  # a copy: building writes build/ and *.egg-info beside the sources
    skip = shutil.ignore_patterns(".git", ".venv", ".cache", "runs", "build", "*.egg-info", "tests")
    shutil.copytree(ROOT, tree, ignore=skip)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp / "dist"), str(tree)],
        check=True, capture_output=True, cwd=tmp,
    )  # fmt: skip
    [wheel] = (tmp / "dist").glob("agentgym-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True)
    pip = tmp / "venv" / "bin" / "pip"
    subprocess.run([pip, "install", "-q", "--no-deps", str(wheel)], check=True, cwd=tmp)
    site = next((tmp / "venv" / "lib").glob("python*/site-packages"))
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (tmp / "wheel.json").write_text(json.dumps(zipfile.ZipFile(wheel).namelist()))
    return tmp / "venv" / "bin"


@pytest.mark.slow
def test_every_module_of_the_wheel_imports_from_the_wheel(installed):
    names = json.loads((installed.parent.parent / "wheel.json").read_text())
    modules = sorted(
        n.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for n in names
        if n.endswith(".py") and not n.endswith("__main__.py")
    )
    assert {"agentgym.envs.remote", "agentgym.trainers.grpo.loop", "agentgym.cli"} <= set(modules)
    assert "agentgym/sandbox/images/swe/Dockerfile" in names
    assert "agentgym/conf/recipe/deep_research_smollm2.yaml" in names
    script = (
        "import importlib, sys, agentgym\n"
        "for m in sys.argv[1:]: importlib.import_module(m)\n"
        "print(agentgym.__file__)\n"
    )
    done = subprocess.run(
        [installed / "python", "-c", script, *modules], capture_output=True, text=True, cwd="/"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().startswith(str(installed.parent)), done.stdout


@pytest.mark.slow
def test_the_installed_command_plays_a_served_environment(installed, tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "agentgym.cli", "serve", "env", "env=guess_number", f"port={port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(120):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
        oracle = "policy.script=agentgym.envs.guess_number:GuessNumberEnv.oracle"
        done = subprocess.run(
            [installed / "agentgym", "eval", "env=remote", f"env.url=ws://127.0.0.1:{port}",
             "policy=scripted", oracle, "episodes=4", f"out={tmp_path / 'run'}"],
            capture_output=True, text=True, cwd=tmp_path, timeout=300,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(10)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["episodes"] == 4 and summary["success_rate"] == 1.0


@pytest.mark.docker
@pytest.mark.slow
def test_the_installed_command_builds_the_sandbox_image_from_its_own_files(installed):
    tag = "agentgym/swe-wheel-test:latest"
    done = subprocess.run(
        [installed / "agentgym", "sandbox", "build", "--tag", tag, "--force",
         "--base", "agentgym/base:bookworm"],
        capture_output=True, text=True, cwd="/", timeout=600,
    )  # fmt: skip
    try:
        assert done.returncode == 0, done.stderr[-2000:]
        assert f"built {tag}" in done.stdout
        probe = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", tag, "python3", "-c", "print(1)"],
            capture_output=True,
            text=True,
        )
        assert probe.stdout.strip() == "1"
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
