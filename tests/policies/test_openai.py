import asyncio
import json

import httpx
import pytest

from agentgym.cli import main
from agentgym.errors import PolicyError
from agentgym.policies.openai import Client
from agentgym.rollout import read_trajectories
from tests.conftest import check_token_trajectory


def client_for(handler, retries=3):
    return Client("http://test", max_retries=retries, transport=httpx.MockTransport(handler))


def test_client_retries_transient_failures():
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ConnectError("refused")
        if len(calls) == 2:
            return httpx.Response(503, text="busy")
        return httpx.Response(200, json={"ok": True})

    assert asyncio.run(client_for(handler).post("/v1/x", {})) == {"ok": True}
    assert len(calls) == 3


def test_client_gives_up_and_does_not_retry_client_errors():
    with pytest.raises(PolicyError, match="failed 2 times; last: HTTP 500"):
        asyncio.run(client_for(lambda r: httpx.Response(500, text="x"), retries=1).post("/a", {}))
    calls = []

    def bad(request):
        calls.append(1)
        return httpx.Response(400, text="bad prompt")

    with pytest.raises(PolicyError, match="HTTP 400: bad prompt"):
        asyncio.run(client_for(bad).post("/a", {}))
    assert calls == [1]


@pytest.mark.vllm
@pytest.mark.slow
def test_eval_against_real_vllm_server(vllm_server, tiny_model, hf_model, tmp_path):
    code = main(
        [
            "eval",
            "env=guess_number",
            "policy=openai",
            "policy.model=tiny",
            f"policy.tokenizer={tiny_model}",
            f"policy.base_url={vllm_server}",
            "policy.max_new_tokens=48",
            "episodes=8",
            "group_size=4",
            f"out={tmp_path}",
        ]
    )
    assert code == 0
    trajs = list(read_trajectories(tmp_path / "trajectories.jsonl"))
    assert len(trajs) == 8
    for t in trajs:
        check_token_trajectory(t, hf_model, tol=2e-2)
    assert json.loads((tmp_path / "summary.json").read_text())["episodes"] == 8


@pytest.mark.vllm
def test_chat_mode_against_real_vllm_server(vllm_server, tmp_path):
    code = main(
        [
            "eval",
            "env=guess_number",
            "policy=openai",
            "policy.model=tiny",
            "policy.mode=chat",
            f"policy.base_url={vllm_server}",
            "policy.max_new_tokens=16",
            "episodes=2",
            f"out={tmp_path}",
        ]
    )
    assert code == 0
    trajs = list(read_trajectories(tmp_path / "trajectories.jsonl"))
    assert len(trajs) == 2 and all(t.token_ids == [] and t.turns for t in trajs)
