"""The engine router: an episode stays on its engine, new ones go to the least loaded."""

import asyncio

import pytest

from agentgym.policies.base import SamplingConfig, TokenPolicy
from agentgym.policies.router import Router
from agentgym.rollout import RolloutConfig, rollout
from agentgym.types import Sample
from tests.agentgym.test_env import Echo


class Engine(TokenPolicy):
    """A stand-in engine: answers a guess after ``delay``, logs (its name, prompt) per call."""

    def __init__(self, tokenizer, name, log, delay=0.01):
        super().__init__(tokenizer, SamplingConfig(max_new_tokens=8))
        self.name, self.log, self.delay = name, log, delay
        self.loads = 0

    async def generate(self, prompt_ids, max_tokens, seed, sampling=None):
        self.log.append((self.name, list(prompt_ids)))
        await asyncio.sleep(self.delay)
        text = '<tool_call>{"name": "guess", "arguments": {"number": 50}}</tool_call>'
        ids = [*self.renderer.encode(text), self.renderer.eos_id]
        return Sample(text=text, token_ids=ids, logprobs=[-0.5] * len(ids))

    async def load_weights(self):
        self.loads += 1


@pytest.fixture
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def check_sticky(log):
    """Every later turn of an episode (a prompt extending an earlier one) went to the engine
    that served the earlier turn."""
    for i, (name, prompt) in enumerate(log):
        for other, earlier in log[:i]:
            if len(earlier) < len(prompt) and prompt[: len(earlier)] == earlier:
                assert other == name


def test_episodes_stay_on_their_engine_and_spread_by_outstanding_tokens(tokenizer):
    log = []
    router = Router([Engine(tokenizer, "a", log), Engine(tokenizer, "b", log, delay=0.05)])
    # every episode's prompt differs ("say <its number>"), so a prompt names its episode
    trajs = asyncio.run(rollout(Echo, router, list(range(8)), 1, RolloutConfig(concurrency=8)))
    assert len({t.messages[0].content for t in trajs}) == 8
    assert all(len(t.turns) >= 2 for t in trajs)
    check_sticky(log)
    firsts = [name for name, prompt in log if not any(  # an episode's first turn
        len(e) < len(prompt) and prompt[: len(e)] == e for _, e in log
    )]  # fmt: skip
    assert set(firsts) == {"a", "b"}  # both engines got episodes
    assert router.outstanding == [0, 0]


def test_new_episodes_go_to_the_engine_with_fewer_outstanding_tokens(tokenizer):
    router = Router([Engine(tokenizer, "a", []), Engine(tokenizer, "b", [])])
    router.outstanding = [500, 20]
    assert router.least_loaded() == 1


def test_weights_load_into_every_engine_and_the_gate_is_the_routers(tokenizer, tmp_path):
    """A trainable router's sync (here through files) reaches each of its replicas, and the
    version it stamps is the router's."""
    from agentgym.policies.vllm_weights import VLLMWeights

    class Weights:
        def export(self, path):
            (path / "model.safetensors").write_text("weights")

        def policy_weights(self):
            raise AssertionError("the disk sync writes files")

    class Learner:
        weights = Weights()

    engines = [Engine(tokenizer, n, []) for n in "ab"]
    router = Router(engines)
    assert router.replicas() == engines
    with pytest.raises(TypeError, match="not built to load a learner's weights"):
        asyncio.run(router.sync_from(Learner(), 1))
    router.weight_path = VLLMWeights("disk", tmp_path)
    asyncio.run(router.sync_from(Learner(), 3))
    assert [e.loads for e in engines] == [1, 1] and router.version == 3
    assert (tmp_path / "model.safetensors").read_text() == "weights"
