"""Sandbox speed: episode reset from the warm pool and ``exec`` round trip, docker and local.

Reset = take a sandbox from the pool + copy a generated repository in + ``git init/commit``
(what ``swe`` does at reset). Baseline in the same run: a cold reset (start a container
first). Goal on this machine: warm reset under 300 ms p50, exec under 100 ms p50.

Usage: python bench/sandbox.py [--episodes 30]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from agentgym.data.repos import make_repo_tasks
from agentgym.envs.swe.tasks import SETUP
from agentgym.sandbox import DockerSandbox, LocalSandbox, SandboxPool

warnings.filterwarnings("ignore", message="LocalSandbox")


def ms(xs: list[float]) -> str:
    a = np.asarray(xs) * 1000
    return f"p50 {np.percentile(a, 50):7.1f} ms  p99 {np.percentile(a, 99):7.1f} ms"


async def resets(pool: SandboxPool | None, factory, repo: Path, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        if pool is not None:
            box = await pool.acquire()
        else:
            box = factory()
            await box.start()
        await box.copy_in(repo)
        await box.exec(SETUP)
        times.append(time.perf_counter() - t)
        await box.close()
        await asyncio.sleep(0.4)  # an episode's worth of time for the pool to refill
    return times


async def execs(box, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        await box.exec("echo hi")
        times.append(time.perf_counter() - t)
    return times


async def main(episodes: int) -> None:
    task = make_repo_tasks(1, seed=0, difficulty=2)[0]
    with tempfile.TemporaryDirectory() as tmp:
        task.write(Path(tmp))
        for name, factory in (("docker", DockerSandbox), ("local", LocalSandbox)):
            cold = await resets(None, factory, Path(tmp), episodes)
            pool = SandboxPool(factory, size=2)
            warm = await resets(pool, factory, Path(tmp), episodes)
            box = await pool.acquire()
            ex = await execs(box, episodes * 3)
            await box.close()
            await pool.close()
            ratio = np.median(warm) / np.median(cold)
            print(f"{name:<7} reset warm {ms(warm)}   cold {ms(cold)}   warm/cold {ratio:.2f}")
            print(f"{name:<7} exec       {ms(ex)}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=30)
    asyncio.run(main(ap.parse_args().episodes))
