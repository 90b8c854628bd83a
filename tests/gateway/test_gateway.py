"""The gateway: OpenAI's wire format in and out (the real ``openai`` client, streaming too),
exact token capture joined by prefix, fail-closed attribution, episodes kept apart, and bad
requests answered, not crashed on."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from openai import AsyncOpenAI

from agentgym.gateway import EpisodeRecord, Gateway
from agentgym.gateway.capture import Call
from agentgym.policies.base import SamplingConfig, TokenPolicy
from agentgym.types import Message, Sample

CALL = '<tool_call>{"name": "search", "arguments": {"query": "x"}}</tool_call>'
QUERY = {"type": "object", "properties": {"query": {"type": "string"}}}
TOOLS = [
    {"type": "function", "function": {"name": "search", "description": "s", "parameters": QUERY}}
]


class Echo(TokenPolicy):
    """Answers with a tool call, or with the number of prompt tokens it saw (so that every
    episode's answers differ), ids and log-probs made up but fixed."""

    async def generate(self, prompt_ids, max_tokens, seed, sampling=None):
        await asyncio.sleep(0.01)
        text = CALL if (seed // 1009) % 2 else f"{len(prompt_ids)} tokens"  # by episode
        ids = self.renderer.encode(text)[:max_tokens]
        return Sample(text=text, token_ids=ids, logprobs=[-0.5] * len(ids), finish_reason="stop")


@pytest.fixture
def policy(tiny_model):
    from transformers import AutoTokenizer

    return Echo(AutoTokenizer.from_pretrained(tiny_model), SamplingConfig(max_new_tokens=32))


def run(coro):
    return asyncio.run(coro)


def test_calls_join_by_prefix_and_a_rewritten_history_starts_a_segment():
    record = EpisodeRecord()
    m = Message(role="assistant", content="")
    record.calls = [
        Call([1, 2, 3], [4, 5], [-0.1, -0.2], 0, m),
        Call([1, 2, 3, 4, 5, 6, 7], [8], [-0.3], 0, m),  # extends the first: joined
        Call([1, 2, 9], [10], [-0.4], 1, m),  # rewrote the history: a segment of its own
    ]
    first, second = record.segments()
    assert first.token_ids == [1, 2, 3, 4, 5, 6, 7, 8]
    assert first.loss_mask == [0, 0, 0, 1, 1, 0, 0, 1]
    assert first.logprobs == [0, 0, 0, -0.1, -0.2, 0, 0, -0.3]
    assert first.token_versions == [None, None, None, 0, 0, None, None, 0]
    assert (second.token_ids, second.loss_mask, second.token_versions) == (
        [1, 2, 9, 10], [0, 0, 0, 1], [None, None, None, 1])  # fmt: skip


def test_a_history_the_gateway_did_not_sample_fails_closed():
    record = EpisodeRecord()
    mine = Message(role="assistant", content="mine")
    record.calls = [Call([1], [2], [-1.0], 0, mine)]
    record.check_history([Message(role="user", content="q"), mine])
    assert record.attributable
    record.check_history([Message(role="assistant", content="written elsewhere")])
    assert not record.attributable and "written elsewhere" in record.unattributed[0]


def test_the_openai_client_gets_tool_calls_streamed_or_not_and_episodes_stay_apart(policy):
    async def main():
        gateway = Gateway(policy)
        await gateway.start()
        a, b = gateway.open(seed=1), gateway.open(seed=2)  # odd seed: a tool call
        clients = [
            AsyncOpenAI(base_url=e.base_url, api_key="unused", max_retries=0) for e in (a, b)
        ]
        messages = [{"role": "user", "content": "find x"}]
        try:
            replies = await asyncio.gather(*(
                c.chat.completions.create(model="agentgym", messages=messages, tools=TOOLS)
                for c in clients for _ in range(3)
            ))  # fmt: skip
            stream = await clients[0].chat.completions.create(
                model="agentgym", messages=messages, tools=TOOLS, stream=True
            )
            chunks = [chunk async for chunk in stream]
            keyed = AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=b.token, max_retries=0)
            models = await keyed.models.list()
        finally:
            await gateway.aclose()
        return gateway, a, b, replies, chunks, models

    gateway, a, b, replies, chunks, models = run(main())
    call = replies[0].choices[0]
    assert (
        call.finish_reason == "tool_calls" and call.message.tool_calls[0].function.name == "search"
    )
    assert replies[3].choices[0].message.content.endswith("tokens")  # episode b: no call
    assert len(a.record.calls) == 4 and len(b.record.calls) == 3  # apart, under concurrency
    deltas = [c.choices[0].delta for c in chunks if c.choices and c.choices[0].delta]
    assert any(d.tool_calls for d in deltas) and chunks[-1].choices[0].finish_reason == "tool_calls"
    assert [m.id for m in models.data] == ["agentgym"]


def test_bad_requests_are_answered_and_a_flood_fails_its_episode(policy):
    async def main():
        gateway = Gateway(policy, max_calls=3)
        await gateway.start()
        episode = gateway.open(seed=2)
        url = episode.base_url + "/chat/completions"
        try:
            async with httpx.AsyncClient() as http:
                codes = [
                    (await http.post(url, content=body)).status_code
                    for body in ("{nope", "[1]", '{"messages": 7}', '{"messages": []}',
                                 '{"messages": [{"role": "nobody"}]}',
                                 '{"messages": [{"role": "user"}], "max_tokens": -1}')
                ]  # fmt: skip
                ok = {"messages": [{"role": "user", "content": "q"}], "max_tokens": 10**9}
                answers = [await http.post(url, json=ok) for _ in range(4)]
                lost = await http.post(f"{gateway.url}/e/nope/v1/chat/completions", json=ok)
        finally:
            await gateway.aclose()
        return codes, answers, lost, episode

    codes, answers, lost, episode = run(main())
    assert codes == [400] * 6
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert answers[0].json()["usage"]["completion_tokens"] <= 32  # max_tokens capped
    assert episode.failed and "3 model calls" in episode.failed
    assert lost.status_code == 404 and "no such episode" in lost.json()["error"]["message"]
