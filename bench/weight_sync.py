"""Weight sync into in-process vLLM: through safetensors files and ``reload_weights``
(``trainer.weight_sync=disk``) against a gloo broadcast into the engine
(``weight_sync=broadcast``), on the same learner and engine, alternating, ``--rounds`` times.
Each sync is followed by the probe (sampler log-probs against the learner's), as in training.
Prints min / median / max seconds per sync and the ratio of medians (broadcast / disk).

    bash scripts/setup.sh --models     # once
    .venv/bin/python bench/weight_sync.py [--model .cache/models/smollm2-135m-instruct]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from agentgym.policies.config import VLLMConfig
from agentgym.policies.vllm_weights import VLLMWeights
from agentgym.trainers.config import LearnerConfig
from agentgym.trainers.grpo.sync import probe
from agentgym.trainers.learner import Learner


async def main(args: argparse.Namespace) -> None:
    learner = Learner(args.model, LearnerConfig(), "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        # an engine that takes either way (its worker joins the broadcast group on demand)
        cfg = VLLMConfig(model=args.model, engine={"max_model_len": 2048})
        policy = cfg.sampler(learner, Path(tmp) / "policy", Path(tmp))
        ways = {"broadcast": policy.weight_path, "disk": VLLMWeights("disk", Path(tmp) / "policy")}
        prompt = policy.renderer.encode("The weights of a policy")
        times: dict[str, list[float]] = {"disk": [], "broadcast": []}
        try:
            for r in range(args.rounds):
                for way in list(times) if r % 2 == 0 else list(times)[::-1]:
                    t = time.perf_counter()
                    policy.weight_path = ways[way]
                    await policy.sync_from(learner, r)
                    await probe(policy, learner, prompt, 1e-3)
                    times[way].append(time.perf_counter() - t)
        finally:
            policy.weight_path = ways["broadcast"]
            await policy.aclose()
    print(f"{args.model}, {args.rounds} rounds: seconds per sync + probe (min / median / max)")
    for way, xs in times.items():
        print(f"| {way} | {min(xs):.2f} / {statistics.median(xs):.2f} / {max(xs):.2f} |")
    ratio = statistics.median(times["broadcast"]) / statistics.median(times["disk"])
    print(f"broadcast / disk (median): {ratio:.2f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=".cache/models/smollm2-135m-instruct")
    ap.add_argument("--rounds", type=int, default=6)
    asyncio.run(main(ap.parse_args()))
