import asyncio
import json

import pytest
import torch

from agentgym.cli import main
from agentgym.policies.base import SamplingConfig
from agentgym.policies.hf import HFPolicy
from agentgym.rollout import read_trajectories
from agentgym.types import Sample
from tests.conftest import check_token_trajectory


@pytest.mark.slow
def test_eval_with_hf_policy_and_tiny_model(tiny_model, hf_model, tmp_path):
    code = main(
        [
            "eval",
            "env=guess_number",
            "policy=hf",
            f"policy.model={tiny_model}",
            "policy.max_new_tokens=48",
            "episodes=4",
            "group_size=2",
            f"out={tmp_path}",
        ]
    )
    assert code == 0
    trajs = list(read_trajectories(tmp_path / "trajectories.jsonl"))
    assert len(trajs) == 4 and {t.task for t in trajs} == {0, 1}
    for t in trajs:
        check_token_trajectory(t, hf_model, tol=1e-3)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["mean_sampled_tokens"] > 0 and set(summary["pass_at_k"]) == {"1", "2"}


def test_sampling_ignores_the_models_generation_defaults(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    model.generation_config.no_repeat_ngram_size = 1  # would forbid every repeated token
    model.generation_config.top_k = 1  # would make sampling greedy
    policy = HFPolicy(model, AutoTokenizer.from_pretrained(tiny_model), SamplingConfig())
    prompt = [5, 6, 7]

    async def sample() -> list[Sample]:
        return list(await asyncio.gather(*(policy.generate(prompt, 64, seed=i) for i in range(4))))

    samples = asyncio.run(sample())
    assert len({tuple(s.token_ids) for s in samples}) == 4  # sampled, not greedy
    assert any(len(set(s.token_ids)) < len(s.token_ids) for s in samples)  # repeats allowed
    for s in samples:  # and the log-probs are the model's own
        ids = torch.tensor([prompt + s.token_ids])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0, len(prompt) - 1 : -1], -1)
        want = logp.gather(1, torch.tensor(s.token_ids)[:, None])[:, 0]
        assert torch.allclose(torch.tensor(s.logprobs), want, atol=1e-4)


def test_an_episode_cancelled_while_its_turn_samples_leaves_the_sampler_serving(
    tiny_model, hf_model
):
    from transformers import AutoTokenizer

    policy = HFPolicy(hf_model, AutoTokenizer.from_pretrained(tiny_model), SamplingConfig())

    async def cancel_one() -> Sample:
        doomed = asyncio.ensure_future(policy.generate([5, 6, 7], 200, seed=0))
        kept = asyncio.ensure_future(policy.generate([5, 6, 8], 200, seed=1))
        await asyncio.sleep(0.01)  # both in the batch being sampled
        doomed.cancel()
        # (the sampler used to die setting the cancelled one's result: the kept one hung)
        sample = await asyncio.wait_for(kept, 60)
        assert policy._worker is not None
        await policy._worker
        return sample

    assert asyncio.run(cancel_one()).token_ids  # and the worker finished without an error
