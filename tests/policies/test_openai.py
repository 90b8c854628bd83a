import asyncio
import json

import httpx2
import pytest

from agentgym.cli import main
from agentgym.errors import PolicyError
from agentgym.http import Client
from agentgym.rollout import read_trajectories
from tests.conftest import check_token_trajectory


def client_for(handler, retries=3):
    return Client("http://test", max_retries=retries, transport=httpx2.MockTransport(handler))


def test_client_retries_transient_failures():
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) == 1:
            raise httpx2.ConnectError("refused")
        if len(calls) == 2:
            return httpx2.Response(503, text="busy")
        return httpx2.Response(200, json={"ok": True})

    assert asyncio.run(client_for(handler).post("/v1/x", {})) == {"ok": True}
    assert len(calls) == 3


def test_client_gives_up_and_does_not_retry_client_errors():
    with pytest.raises(PolicyError, match="failed 2 times; last: HTTP 500"):
        asyncio.run(client_for(lambda r: httpx2.Response(500, text="x"), retries=1).post("/a", {}))
    calls = []

    def bad(request):
        calls.append(1)
        return httpx2.Response(400, text="bad prompt")

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


def test_base_url_with_or_without_v1_reaches_the_same_path():
    seen = []

    def handler(request):
        seen.append(request.url.path)
        return httpx2.Response(200, json={})

    for base in ("http://test", "http://test/", "http://test/v1", "http://test/v1/"):
        c = Client(base, max_retries=0, transport=httpx2.MockTransport(handler))
        asyncio.run(c.post("/v1/completions", {}))
    assert seen == ["/v1/completions"] * 4


def test_secrets_are_never_written_or_printed(tmp_path, monkeypatch, capsys):
    secret, password = "sk-test-very-secret-0123", "hunter2pass"

    def refuse(request):
        return httpx2.Response(401, text="no")

    out = tmp_path / "run"
    code = main(
        [
            "eval",
            "env=guess_number",
            "policy=openai",
            "policy.model=m",
            "policy.mode=chat",
            f"policy.api_key={secret}",
            f"policy.base_url=http://user:{password}@127.0.0.1:9",
            "policy.max_retries=0",
            "policy.timeout=2",
            "rollout.max_failure_rate=0",  # the one episode failing fails the run
            "episodes=1",
            f"out={out}",
        ]
    )
    assert code == 2  # the server is not there
    printed = capsys.readouterr()
    files = "".join(p.read_text() for p in out.rglob("*") if p.is_file())
    for text in (printed.out, printed.err, files):
        assert secret not in text and password not in text
    assert "<redacted>" in (out / "config.json").read_text()


def test_a_base_url_that_is_not_a_url_fails_at_once(capsys):
    assert main(["eval", "env=guess_number", "policy=openai", "policy.model=m",
                 "policy.base_url=notaurl"]) == 2  # fmt: skip
    assert "policy.base_url" in capsys.readouterr().err


def test_chat_mode_native_tool_calls_malformed_ones_are_env_feedback():
    """A chat server's native tool calls reach the env as sent: the malformed one (arguments
    that are not JSON) is an error observation and a format error, the next call runs."""
    import agentgym
    from agentgym.policies.base import SamplingConfig
    from agentgym.policies.openai import OpenAIChatPolicy
    from agentgym.rollout import RolloutConfig, rollout

    replies = iter(
        [
            [{"id": "a", "type": "function", "function": {"name": "guess", "arguments": "{"}}],
            [
                {
                    "id": "b",
                    "type": "function",
                    "function": {"name": "guess", "arguments": '{"number": 50}'},
                }
            ],
            "not a list",
        ]
    )
    sent = []

    def server(request):
        sent.append(json.loads(request.content))
        message = {"role": "assistant", "content": "", "tool_calls": next(replies)}
        return httpx2.Response(200, json={"choices": [{"message": message}]})

    policy = OpenAIChatPolicy("m", client_for(server), SamplingConfig())
    settings = RolloutConfig(max_turns=3)
    [t] = asyncio.run(rollout(lambda: agentgym.make("guess_number"), policy, [0], 1, settings))
    first, second, third = t.turns
    assert first.format_error and "not valid JSON" in first.observation[0].content
    assert not second.format_error and second.action.tool_calls[0].arguments == {"number": 50}
    assert third.format_error and "must be a list" in third.observation[0].content
    assert sent[1]["messages"][-1]["content"].startswith("Error: tool call 1")  # the model sees it


def test_chat_mode_sends_screenshots_as_image_parts(tmp_path):
    """gui_action in chat mode: the screenshot reaches the server as an OpenAI image_url part
    beside the text, the way vision-language servers (vLLM, OpenAI) take it."""
    import agentgym
    from agentgym.policies.base import SamplingConfig
    from agentgym.policies.openai import OpenAIChatPolicy
    from agentgym.rollout import RolloutConfig, rollout
    from tests.conftest import png_url

    shot = png_url("red")
    row = {"image": shot, "instruction": "click ok", "bbox": [0, 0, 10, 10]}
    (tmp_path / "one.json").write_text(json.dumps([row]))
    sent = []

    def server(request):
        sent.append(json.loads(request.content))
        reply = '<action>{"action_type": "click", "x": 5, "y": 5}</action>'
        return httpx2.Response(200, json={"choices": [{"message": {"content": reply}}]})

    policy = OpenAIChatPolicy("vl", client_for(server), SamplingConfig())
    make = lambda: agentgym.make("gui_action", dataset=str(tmp_path / "one.json"))  # noqa: E731
    [t] = asyncio.run(rollout(make, policy, [0], 1, RolloutConfig()))
    parts = sent[0]["messages"][0]["content"]
    assert parts[0]["type"] == "text" and "click ok" in parts[0]["text"]
    assert parts[1] == {"type": "image_url", "image_url": {"url": shot}}
    assert t.reward == 3.0
