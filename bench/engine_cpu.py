"""In-process vLLM on a CPU: the model inside the engine-core process (vLLM's uniprocess
executor, what ``VLLMPolicy`` starts on a CPU now) against a worker process of its own (vLLM's
default, what it started before), on the same model and requests.

``--sides uniprocess "2 engines"`` compares one engine with two behind a router
(``policy.engines=2``, each engine its own process with half the KV-cache memory);
``--sides compiled eager`` vLLM's torch.compile (its CPU default) against eager mode
(``enforce_eager``, agentgym's CPU default), start time included.

Each side starts in a fresh process (its own session: a killed bench leaves no engine behind),
alternating, ``--rounds`` times; a side reports the seconds its engine took to start, then
generates ``--episodes`` concurrent first turns of ``--tokens`` tokens ``--batches`` times and
reports wall seconds and CPU seconds (its own process and every child) per batch. Each round
is printed as it ends; then min / median / max per side and the ratio of medians to the first
side (< 1 is faster).

    bash scripts/setup.sh --models     # once
    .venv/bin/python bench/engine_cpu.py [--rounds 3] [--sides uniprocess "2 engines"]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SIDES: dict[str, dict[str, object]] = {
    "uniprocess": {},
    "worker process": {"distributed_executor_backend": "mp"},
    "2 engines": {"engines": 2, "gpu_memory_utilization": 0.1},
    "compiled": {"enforce_eager": False},
    "eager": {"enforce_eager": True},
}


def _cpu_seconds() -> float:
    import psutil

    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


async def _side(args: argparse.Namespace, engine: dict[str, object]) -> dict[str, object]:
    from agentgym.policies.config import build_policy
    from agentgym.types import Message

    engine = dict(engine)
    n = int(engine.pop("engines", 1))  # type: ignore[call-overload]
    t0 = time.perf_counter()
    policy = build_policy(
        {
            "name": "vllm",
            "model": args.model,
            "max_new_tokens": args.tokens,
            "engines": n,
            "engine": {"max_model_len": 2048, "dtype": "float32", **engine},
        },
        {},
        Path(args.log).parent,
    )
    start = time.perf_counter() - t0

    async def one(i: int) -> None:
        messages = [Message(role="user", content=f"Write a story about the number {i}.")]
        await policy.act(policy.start(messages, [], {}, seed=i), 2048)

    await asyncio.gather(*[one(i) for i in range(4)])  # warm-up
    out = []
    for b in range(args.batches):
        c, t = _cpu_seconds(), time.perf_counter()
        await asyncio.gather(*[one(1000 * b + i) for i in range(args.episodes)])
        out.append((time.perf_counter() - t, _cpu_seconds() - c))
    await policy.aclose()
    return {"start": start, "batches": out}


def spread(xs: list[float]) -> str:
    return f"{min(xs):.2f} / {statistics.median(xs):.2f} / {max(xs):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=".cache/models/smollm2-135m-instruct")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--log", default="/tmp/agentgym-bench-engine.log")
    parser.add_argument("--sides", nargs=2, choices=list(SIDES), default=list(SIDES)[:2])
    parser.add_argument("--side", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(asyncio.run(_side(args, SIDES[args.side]))))
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally: kill the side
    runs: dict[str, list[tuple[float, float]]] = {side: [] for side in args.sides}
    starts: dict[str, list[float]] = {side: [] for side in args.sides}
    for r in range(args.rounds):
        for side in args.sides if r % 2 == 0 else args.sides[::-1]:
            got = _run_side(side)
            starts[side].append(float(got["start"]))
            runs[side] += [tuple(x) for x in got["batches"]]
            walls = ", ".join(f"{x[0]:.2f}" for x in got["batches"])
            print(f"round {r} {side}: start {got['start']:.1f} s, s / batch {walls}", flush=True)
    print(f"{args.episodes} episodes x {args.tokens} tokens, {args.rounds} rounds")
    print("| engine | start s | s / batch | CPU s / batch |  (min / med / max)")
    print("|---|---|---|---|")
    for side, xs in runs.items():
        cols = [spread(starts[side]), spread([x[0] for x in xs]), spread([x[1] for x in xs])]
        print(f"| {side} | " + " | ".join(cols) + " |")
    med = [statistics.median(x[0] for x in xs) for xs in runs.values()]
    cpu = [statistics.median(x[1] for x in xs) for xs in runs.values()]
    first, second = args.sides
    print(f"ratio {first} / {second}: {med[0] / med[1]:.2f} (wall), {cpu[0] / cpu[1]:.2f} (CPU)")


def _run_side(side: str) -> dict[str, Any]:
    """One side in a fresh process of its own session, killed with its engine if we stop."""
    cmd = [sys.executable, __file__, *sys.argv[1:], "--side", side]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ.copy(), start_new_session=True)  # fmt: skip
    try:
        out, err = proc.communicate()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    if proc.returncode:
        raise SystemExit(f"{side} failed:\n{err[-3000:]}")
    return dict(json.loads(out.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
