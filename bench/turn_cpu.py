"""agentgym's own CPU per turn on deep_research (4-5 turns an episode): everything a turn
costs outside the model: the env's step (parse the call, BM25 search, format the results),
rendering and tokenising the observation into the conversation, recording the turn.

The policy is the env's oracle written as token ids in a real model's chat template
(``ScriptedTokenPolicy``: no model runs), so process CPU is all agentgym's. A warm-up round
first (indexes, tokenizer, template compiled), then ``--rounds`` measured rounds of
``--episodes`` episodes at ``--concurrency`` in flight; prints CPU ms per turn (min / median /
max) and where it goes (observe: render + tokenise the env's answer; act encode: the script's
turn as ids; the rest: the env's step, BM25 included, and the rollout engine), medians.

    .venv/bin/python bench/turn_cpu.py [--tokenizer .cache/models/smollm2-135m-instruct]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import agentgym
from agentgym.policies.config import resolve_script
from agentgym.policies.scripted import ScriptedTokenPolicy
from agentgym.rollout import EnvPool, RolloutConfig, rollout
from agentgym.testing import build_tiny_model

SPENT: dict[str, float] = defaultdict(float)


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (synchronous) with its CPU time added to ``SPENT[name]``."""

    def run(*a: Any, **kw: Any) -> Any:
        t = time.process_time()
        try:
            return fn(*a, **kw)
        finally:
            SPENT[name] += time.process_time() - t

    return run


async def one_round(envs: EnvPool, policy: Any, args: argparse.Namespace, seed: int) -> int:
    settings = RolloutConfig(concurrency=args.concurrency, max_tokens=16384)
    tasks = list(range(seed, seed + args.episodes))
    trajs = await rollout(envs, policy, tasks, 1, settings)
    return sum(len(t.turns) for t in trajs)


async def main(args: argparse.Namespace) -> None:
    tokenizer = args.tokenizer
    if not (Path(tokenizer) / "tokenizer.json").exists():
        tokenizer = str(build_tiny_model(".cache/tiny-model"))
    transformers = __import__("transformers")
    env_cls = agentgym.spec("deep_research").load()
    policy = ScriptedTokenPolicy(
        resolve_script("oracle", env_cls.baselines),
        transformers.AutoTokenizer.from_pretrained(tokenizer),
    )
    envs = EnvPool(lambda: agentgym.make("deep_research"))
    policy.observe = timed("observe", policy.observe)  # type: ignore[method-assign]
    policy.renderer.encode = timed("act encode", policy.renderer.encode)  # type: ignore
    await one_round(envs, policy, args, 10_000)  # warm-up
    per_turn, parts = [], defaultdict(list)
    try:
        for r in range(args.rounds):
            SPENT.clear()
            t = time.process_time()
            turns = await one_round(envs, policy, args, r * args.episodes)
            per_turn.append((time.process_time() - t) * 1000 / turns)
            for name, spent in SPENT.items():
                parts[name].append(spent * 1000 / turns)
            parts["env and engine"].append(per_turn[-1] - sum(SPENT.values()) * 1000 / turns)
    finally:
        await envs.aclose()
    lo, mid, hi = min(per_turn), statistics.median(per_turn), max(per_turn)
    print(f"tokenizer {Path(tokenizer).name}; {args.episodes} episodes x {args.rounds} rounds")
    print(f"CPU per turn: min {lo:.2f}  median {mid:.2f}  max {hi:.2f} ms")
    print("  " + "  ".join(f"{k} {statistics.median(v):.2f}" for k, v in sorted(parts.items())))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", default=".cache/models/smollm2-135m-instruct")
    parser.add_argument("--episodes", type=int, default=128)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
