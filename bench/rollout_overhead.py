"""Rollout-engine overhead against the bare policy backend, openai policy + a real vLLM server.

(a) a hand-written loop: each task's environment reset, its prompt rendered and sent
    straight through ``OpenAIPolicy.generate``, ``--concurrency`` at a time (what a user's own
    loop must do at the least; before, the prompts were rendered before the clock started);
(b) the same episodes through ``rollout`` with a one-turn trivial environment;
(c) the same requests (prompt ids, seeds, ``return_token_ids``, log-probs) through the
    ``openai`` SDK's ``AsyncOpenAI`` client, the field's reference client.
Seeds are equal, so vLLM samples the same tokens in all three. Rounds rotate the order; the
script prints each round, the median ratios b/a (goal: <= 1.05) and a/c (ours against the SDK;
goal: <= 1.0), and the client CPU seconds of each side (min / median / max).

    bash scripts/setup.sh            # once (installs the [bench] extra)
    .venv/bin/python bench/rollout_overhead.py [--episodes 256] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from agentgym import AgentEnv, Message
from agentgym.http import Client
from agentgym.policies.base import SamplingConfig
from agentgym.policies.openai import OpenAIPolicy
from agentgym.rollout import RolloutConfig, episode_seed, rollout
from agentgym.testing import build_tiny_model, vllm_server_command


class OneTurn(AgentEnv):
    """Shows a seeded question; any reply ends the episode."""

    def task(self, options: dict[str, Any]) -> tuple[list[Message], dict[str, Any]]:
        n = int(self.np_random.integers(0, 10**6))
        return [Message(role="user", content=f"Say something about {n}.")], {}


def start_server(model: Path, port: int) -> subprocess.Popen[bytes]:
    sockets = Path(".cache/vllm-sockets").resolve()  # vLLM never unlinks its sockets
    shutil.rmtree(sockets, ignore_errors=True)
    sockets.mkdir(parents=True)
    cmd = vllm_server_command(model, port, sockets=sockets)
    log = open(".cache/bench-vllm.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(1)
    proc.kill()
    raise SystemExit("vLLM server did not come up")


async def prompt_of(policy: OpenAIPolicy, env: OneTurn, task: int) -> list[int]:
    """The first prompt's ids of ``task``, as the policy renders them."""
    obs, _ = await env.areset(seed=task)
    return policy.renderer.prompt_ids(obs.messages, obs.tools)


async def direct(
    policy: OpenAIPolicy, tasks: list[int], concurrency: int, max_tokens: int
) -> tuple[float, int]:
    env, slots = OneTurn(), asyncio.Semaphore(concurrency)

    async def one(task: int) -> int:
        async with slots:
            ids = await prompt_of(policy, env, task)
            sample = await policy.generate(ids, max_tokens, seed=episode_seed(task, 0) * 1009)
            return len(sample.token_ids)

    start = time.perf_counter()
    counts = await asyncio.gather(*(one(t) for t in tasks))
    return time.perf_counter() - start, sum(counts)


async def sdk(
    client: Any, policy: OpenAIPolicy, tasks: list[int], concurrency: int, max_tokens: int
) -> tuple[float, int]:
    """(c): the requests of (a), sent by the openai SDK."""
    env, slots = OneTurn(), asyncio.Semaphore(concurrency)

    async def one(task: int) -> int:
        async with slots:
            ids = await prompt_of(policy, env, task)
            out = await client.completions.create(
                model="tiny",
                prompt=ids,
                max_tokens=max_tokens,
                temperature=policy.sampling.temperature,
                top_p=policy.sampling.top_p,
                seed=episode_seed(task, 0) * 1009,
                logprobs=0,
                extra_body={"return_token_ids": True, "skip_special_tokens": True},
            )
            return len(out.choices[0].model_extra["token_ids"])

    start = time.perf_counter()
    counts = await asyncio.gather(*(one(t) for t in tasks))
    return time.perf_counter() - start, sum(counts)


async def engine(policy: OpenAIPolicy, tasks: list[int], concurrency: int) -> tuple[float, int]:
    settings = RolloutConfig(max_turns=1, max_tokens=4096, concurrency=concurrency)
    start = time.perf_counter()
    trajs = await rollout(OneTurn, policy, tasks, 1, settings)
    return time.perf_counter() - start, sum(sum(t.loss_mask) for t in trajs)


async def timed(coro: Any) -> tuple[float, float, int]:
    """Await ``coro``; return (seconds per generated token, this process's CPU s, tokens)."""
    cpu = time.process_time()
    wall, tokens = await coro
    return wall / max(tokens, 1), time.process_time() - cpu, tokens


async def main(args: argparse.Namespace) -> None:
    model = build_tiny_model(Path(".cache/tiny-model"))
    proc = start_server(model, args.port)
    try:
        client = Client(f"http://127.0.0.1:{args.port}", concurrency=args.concurrency)
        sampling = SamplingConfig(max_new_tokens=args.max_new_tokens)
        policy = OpenAIPolicy("tiny", str(model), client, sampling)
        tasks = list(range(args.episodes))
        await direct(policy, tasks[: args.concurrency], args.concurrency, args.max_new_tokens)
        import openai

        reference = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{args.port}/v1", api_key="EMPTY")
        sides = {
            "direct": lambda: direct(policy, tasks, args.concurrency, args.max_new_tokens),
            "engine": lambda: engine(policy, tasks, args.concurrency),
            "sdk": lambda: sdk(reference, policy, tasks, args.concurrency, args.max_new_tokens),
        }
        got: dict[str, list[tuple[float, float, int]]] = {k: [] for k in sides}
        for r in range(args.rounds):
            order = list(sides)[r % 3 :] + list(sides)[: r % 3]  # no side always runs first
            for name in order:
                got[name].append(await timed(sides[name]()))
            print(
                f"round {r}: "
                + "  ".join(
                    f"{k} {v[-1][0] * 1e3:.3f} ms/token ({v[-1][2]} tokens, cpu {v[-1][1]:.2f}s)"
                    for k, v in got.items()
                )
            )

        def med(name: str, i: int) -> float:
            return statistics.median(x[i] for x in got[name])

        for name, xs in got.items():
            cpu = sorted(x[1] for x in xs)
            print(f"{name:<7} client CPU s: {cpu[0]:.2f} / {med(name, 1):.2f} / {cpu[-1]:.2f}")
        per_ep = (med("engine", 1) - med("direct", 1)) / args.episodes * 1e3
        pairs = zip(got["engine"], got["direct"], got["sdk"], strict=True)
        b_a = statistics.median(e[0] / d[0] for e, d, _ in pairs)
        pairs = zip(got["engine"], got["direct"], got["sdk"], strict=True)
        a_c = statistics.median(d[0] / c[0] for _, d, c in pairs)
        print(
            f"rollout_overhead episodes={args.episodes} concurrency={args.concurrency} "
            f"median ratio b/a (time per generated token) = {b_a:.3f} (goal <= 1.05); "
            f"a/c (ours / openai SDK) = {a_c:.3f} (goal <= 1.0); client CPU ours / SDK = "
            f"{med('direct', 1) / med('sdk', 1):.2f}; engine client CPU over direct: "
            f"{per_ep:.2f} ms/episode"
        )
        await reference.close()
        await policy.aclose()
    finally:
        os.killpg(proc.pid, 15)
        proc.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--port", type=int, default=8765)
    asyncio.run(main(parser.parse_args()))
