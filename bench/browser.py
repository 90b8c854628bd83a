"""GUI speed: action + observation round trip (p50/p99) and episode reset time, with the
browser kept across episodes (fresh context each) against a cold reset that launches a
browser each time, measured in the same run. Goal on this machine: under 100 ms p50 per
step and under 500 ms per reset.

Usage: python bench/browser.py [--episodes 20]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np

import agentgym
from agentgym.envs.gui.baselines import oracle


def ms(xs: list[float]) -> str:
    a = np.asarray(xs) * 1000
    return f"p50 {np.percentile(a, 50):7.1f} ms  p99 {np.percentile(a, 99):7.1f} ms"


async def run(episodes: int, warm: bool) -> tuple[list[float], list[float]]:
    resets, steps = [], []
    env = agentgym.make("gui")
    for ep in range(episodes):
        if not warm and ep:
            await env.aclose()
            env = agentgym.make("gui")
        t = time.perf_counter()
        obs, info = await env.areset(seed=ep)
        resets.append(time.perf_counter() - t)
        messages = list(obs.messages)
        for _ in range(len(info["plan"])):
            action = oracle(messages, info, np.random.default_rng(0))
            t = time.perf_counter()
            obs, _, term, trunc, _ = await env.astep(action)
            steps.append(time.perf_counter() - t)
            messages += [agentgym.Message(role="assistant", content=action), *obs.messages]
            if term or trunc:
                break
    await env.aclose()
    return resets, steps


async def main(episodes: int) -> None:
    warm_resets, steps = await run(episodes, warm=True)
    cold_resets, _ = await run(max(3, episodes // 4), warm=False)
    print(f"step (action + tree)   {ms(steps)}   ({len(steps)} steps)")
    print(f"reset, browser kept    {ms(warm_resets[1:])}")
    print(
        f"reset, cold browser    {ms(cold_resets)}   warm/cold "
        f"{np.median(warm_resets[1:]) / np.median(cold_resets):.2f}"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=20)
    asyncio.run(main(ap.parse_args().episodes))
