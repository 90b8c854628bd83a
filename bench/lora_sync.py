"""LoRA as the sampler sees it: vLLM serving the learner's adapters (adapter-only sync) against
today's path (the adapters merged into full float32 weights, broadcast into the engine).

One LoRA learner (SmolLM2, rank ``--rank``, bf16 compute where this CPU has it) takes one
update, so that its adapters are not zero. Each side starts its engine in turn (never two at
once), syncs the learner's policy ``--syncs`` times, then samples ``--episodes`` prompts of the
main recipe's length; per side it prints the sync time, the sampling time (tokens/s), and the
mean |sampler - learner| log-prob over the sampled tokens (the trainer's sync probe; its
tolerance is 0.05). Sides:

* ``merged``: an fp32 engine; each sync broadcasts the merged state (``VLLMWeights``).
* ``adapter``: an engine on the base model with ``enable_lora`` (fp32, and bf16 with
  ``--adapter-dtype bfloat16``); each sync writes the adapters (peft's files) to a new folder
  and the requests name it (``LoRARequest``, a new id per version, as each policy version
  would be while episodes of the previous one are still in flight).

    bash scripts/setup.sh --models     # once: .cache/models/smollm2-135m-instruct
    .venv/bin/python bench/lora_sync.py [--episodes 64] [--syncs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from learner import batch  # bench/learner.py, beside this script

from agentgym.models import copy_model_files
from agentgym.policies.base import SamplingConfig
from agentgym.policies.vllm import VLLMPolicy
from agentgym.policies.vllm_weights import RECEIVER, VLLMWeights
from agentgym.trainers.config import LearnerConfig, LoRAConfig
from agentgym.trainers.grpo.config import GRPOConfig
from agentgym.trainers.grpo.objective import GRPOObjective
from agentgym.trainers.learner import Learner


async def sample(policy: VLLMPolicy, prompts: list[list[int]], tokens: int, lora: Any) -> list:
    """Every prompt sampled at once (temperature 1), with the adapter ``lora`` (or none)."""
    vllm = policy._vllm
    params = vllm.SamplingParams(
        temperature=1.0, max_tokens=tokens, logprobs=0, seed=0, detokenize=False
    )

    async def one(i: int, ids: list[int]) -> Any:
        final = None
        async for out in policy.engine.generate(
            vllm.TokensPrompt(prompt_token_ids=ids),
            params,
            request_id=f"b{i}-{time.time()}",
            lora_request=lora,
        ):
            final = out
        return final.outputs[0]

    return await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))


def gap(learner: Learner, prompts: list[list[int]], outs: list) -> float:
    """Mean |sampler - learner| log-prob over the sampled tokens."""
    full = [p + list(o.token_ids) for p, o in zip(prompts, outs, strict=True)]
    mine = learner.logprobs(full, starts=[len(p) for p in prompts])
    diffs = []
    for p, o, lp in zip(prompts, outs, mine, strict=True):
        theirs = [s[t].logprob for t, s in zip(o.token_ids, o.logprobs, strict=True)]
        diffs += [abs(a - b) for a, b in zip(theirs, lp[len(p) :], strict=True)]
    return statistics.fmean(diffs)


async def side(name: str, learner: Learner, model: str, args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix=f"lora-{name}-"))
    sampling = SamplingConfig(max_new_tokens=args.tokens)
    folder = work / "model"
    copy_model_files(model, folder)
    if name == "merged":
        learner.weights.export(folder)
        policy = VLLMPolicy(str(folder), sampling, dtype="float32", worker_extension_cls=RECEIVER)
        path = VLLMWeights("broadcast", folder)
    else:
        policy = VLLMPolicy(
            model,
            sampling,
            dtype=args.adapter_dtype,
            enable_lora=True,
            max_lora_rank=args.rank,
            max_loras=2,
        )
    from vllm.lora.request import LoRARequest

    lora, syncs = None, []
    for version in range(1, args.syncs + 1):
        t = time.perf_counter()
        if name == "merged":
            await path.push(policy, learner, version)
        else:
            adapter = work / f"v{version}"
            learner.model.save_pretrained(adapter)
            lora = LoRARequest(f"v{version}", version, str(adapter))
            await sample(policy, [[1, 2, 3]], 1, lora)  # the engine loads it on first use
        syncs.append(time.perf_counter() - t)
    vocab = learner.model.config.vocab_size
    prompts = [
        s.token_ids[: args.prompt]
        for s in batch(args.episodes, args.prompt, args.prompt + 1, vocab)
    ]
    t = time.perf_counter()
    outs = await sample(policy, prompts, args.tokens, lora)
    seconds = time.perf_counter() - t
    made = sum(len(o.token_ids) for o in outs)
    print(
        f"| {name} ({args.adapter_dtype if name != 'merged' else 'float32'}) | "
        f"{statistics.median(syncs):.2f} | {seconds:.1f} | {made / seconds:.0f} | "
        f"{gap(learner, prompts, outs):.4f} |",
        flush=True,
    )
    await policy.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=".cache/models/smollm2-135m-instruct")
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--prompt", type=int, default=400, help="prompt tokens")
    parser.add_argument("--tokens", type=int, default=64, help="sampled tokens per episode")
    parser.add_argument("--syncs", type=int, default=3)
    parser.add_argument("--adapter-dtype", default="float32")
    parser.add_argument("--sides", nargs="+", default=["merged", "adapter"])
    args = parser.parse_args()
    cfg = LearnerConfig(lr=2e-4, lora=LoRAConfig(rank=args.rank, alpha=32))
    learner = Learner(args.model, cfg, "cpu")
    vocab = learner.model.config.vocab_size
    learner.update(batch(4, 200, 300, vocab), GRPOObjective(GRPOConfig()))
    print(
        f"learner computes in {learner.compute_dtype}; LoRA rank {args.rank}; "
        f"{args.episodes} prompts of {args.prompt} tokens, {args.tokens} sampled each"
    )
    print("| side | sync s (median) | sampling s | tokens/s | mean log-prob gap |")
    print("|---|---|---|---|---|")
    for name in args.sides:
        asyncio.run(side(name, learner, args.model, args))


if __name__ == "__main__":
    main()
