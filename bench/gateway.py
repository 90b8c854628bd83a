"""What the gateway costs: the same env and model, episodes driven by agentgym's own engine
against the same loop written as a program (``agentgym/programs/tool_loop.py``: the OpenAI SDK,
the env's tools over HTTP) behind the gateway (``env=harness``).

One policy serves both (the packaged SmolLM2 on the in-process vLLM engine, or ``--hf`` for
transformers), and the program sends the env's opening messages (``$AGENTGYM_MESSAGES``) as the
engine does, so the episodes match but for sampling. Besides episodes per minute the script
prints each side's seconds outside the model per episode: the gateway's overhead is the program
side's extra non-model time (process start, HTTP, the SDK), as a share of its episode.
Rounds alternate the order. Also: the fraction of sampled tokens attributed (goal 100%), and
the gateway's own cost per model call (HTTP, rendering, capture), against a policy that
answers at once, through the openai SDK's AsyncOpenAI client.

    .venv/bin/python bench/gateway.py [--episodes 16] [--rounds 2] [--env deep_research]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any

from agentgym.evaluate import aevaluate
from agentgym.policies.base import SamplingConfig, TokenPolicy
from agentgym.policies.config import build_policy
from agentgym.registration import make
from agentgym.rollout import RolloutConfig
from agentgym.types import Sample

MODEL = ".cache/models/smollm2-135m-instruct"


def side(summary: dict[str, Any], episodes: int) -> dict[str, float]:
    s = summary["seconds"]
    wall = s["wall"]
    return {
        "episodes_per_min": 60 * episodes / wall,
        "model_s_per_episode": s["policy"] / episodes,
        "other_s_per_episode": (s["env"] + s["reset"]) / episodes,
        "tokens_per_episode": summary["mean_sampled_tokens"],
        "failed": summary["failed_episodes"],
    }


async def main(args: argparse.Namespace) -> None:
    name = "hf" if args.hf else "vllm"
    policy = build_policy({"name": name, "model": args.model, "max_new_tokens": args.tokens})
    program = [sys.executable, "-m", "agentgym.programs.tool_loop"]
    settings = RolloutConfig(concurrency=args.concurrency, max_turns=args.turns)
    options = {"AGENT_MAX_TURNS": str(args.turns)}

    def engine_env() -> Any:
        return make(args.env)

    def gateway_env() -> Any:
        return make("harness", task=args.env, command=program, variables=options)

    try:
        await compare(args, policy, engine_env, gateway_env, settings)
    finally:
        await policy.aclose()
    ms = await per_call(args.model, 512, args.concurrency)
    print(f"gateway per model call: {ms:.2f} ms ({args.concurrency} clients, 512 calls)")


async def compare(args: argparse.Namespace, policy: Any, engine_env: Any, gateway_env: Any,
                  settings: RolloutConfig) -> None:  # fmt: skip
    rows: dict[str, list[dict[str, float]]] = {"engine": [], "gateway": []}
    attributed = []
    for r in range(args.rounds):
        order = ["engine", "gateway"] if r % 2 == 0 else ["gateway", "engine"]
        for kind in order:
            trajs: list[Any] = []
            summary = await aevaluate(
                engine_env if kind == "engine" else gateway_env, policy,
                episodes=args.episodes, seed=1000 * r, settings=settings, on_episode=trajs.append,
            )  # fmt: skip
            rows[kind].append(side(summary, args.episodes))
            if kind == "gateway":
                ok = sum(t.sampled_tokens for t in trajs if not t.attribution_failed)
                attributed.append(ok / max(1, sum(t.sampled_tokens for t in trajs)))
            print(f"round {r} {kind:8s}", {k: round(v, 3) for k, v in rows[kind][-1].items()})
    med = {k: {f: statistics.median(x[f] for x in v) for f in v[0]} for k, v in rows.items()}
    extra = med["gateway"]["other_s_per_episode"] - med["engine"]["other_s_per_episode"]
    episode = med["gateway"]["model_s_per_episode"] + med["gateway"]["other_s_per_episode"]
    print(
        f"episodes/min: engine {med['engine']['episodes_per_min']:.1f}, "
        f"gateway {med['gateway']['episodes_per_min']:.1f} "
        f"(ratio {med['gateway']['episodes_per_min'] / med['engine']['episodes_per_min']:.2f})"
    )
    print(
        f"non-model seconds per episode: engine {med['engine']['other_s_per_episode']:.2f}, "
        f"gateway {med['gateway']['other_s_per_episode']:.2f}; gateway overhead "
        f"{extra:.2f} s = {100 * extra / episode:.1f}% of its episode (goal <= 10%)"
    )
    print(f"attributed tokens: {100 * min(attributed):.1f}% (worst round; goal 100%)")  # fmt: skip


class Instant(TokenPolicy):
    """Answers every call at once with the same few tokens: what is left is the gateway."""

    async def generate(self, prompt_ids, max_tokens, seed, sampling=None):  # type: ignore[no-untyped-def]
        ids = self.renderer.encode("forty two")
        return Sample(text="forty two", token_ids=ids, logprobs=[-0.1] * len(ids))


async def per_call(model: str, calls: int, concurrency: int) -> float:
    """Milliseconds of wall per model call through the gateway (``concurrency`` clients)."""
    from openai import AsyncOpenAI
    from transformers import AutoTokenizer

    from agentgym.gateway import Gateway

    policy = Instant(AutoTokenizer.from_pretrained(model), SamplingConfig(max_new_tokens=8))
    gateway = await Gateway.of(policy)
    history = [{"role": "user", "content": "What is six times seven?"}]

    async def client(n: int) -> None:
        for first in range(0, calls // concurrency, 32):  # an episode: 32 calls at most
            link = gateway.open(n * calls + first)
            openai = AsyncOpenAI(base_url=link.base_url, api_key=link.token, max_retries=0)
            for _ in range(min(32, calls // concurrency - first)):
                await openai.chat.completions.create(model="agentgym", messages=history)  # type: ignore[arg-type]
            gateway.close(link)

    t0 = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(concurrency)))
    wall = time.perf_counter() - t0
    return 1000 * wall / calls


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="deep_research")
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--hf", action="store_true", help="transformers instead of vLLM")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64, help="max new tokens per call")
    parser.add_argument("--rounds", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
