"""deep_research end to end: baselines through `agentgym eval`, the tiny model, a real
retrieval server, a real local web server, process rewards, and bad input."""

import asyncio
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import agentgym
from agentgym.envs.deep_research.baselines import call
from agentgym.envs.deep_research.web import Fetcher, InternetWeb
from agentgym.errors import ConfigError, ToolError
from agentgym.types import Message, ToolCall
from tests.conftest import check_token_trajectory, eval_run

SMALL = ["env.world_size=1000", "env.tasks=60"]


def run_eval(tmp_path, *overrides):
    return eval_run(tmp_path / "run", "env=deep_research", *SMALL, *overrides)


def test_oracle_scores_one_and_naive_clearly_less(tmp_path):
    oracle, trajs = run_eval(
        tmp_path / "o", "policy=scripted", "policy.script=oracle", "episodes=60"
    )
    naive, _ = run_eval(tmp_path / "n", "policy=scripted", "policy.script=naive", "episodes=60")
    assert (
        oracle["mean_reward"] == 1.0 and oracle["success_rate"] == 1.0
    )  # every question answerable
    assert naive["mean_reward"] < 0.6
    # the oracle opens every supporting page: process rewards say so, turn by turn
    for t in trajs:
        signals = [turn.info.get("signals", {}) for turn in t.turns]
        opened = signals[1:-1]  # search, open each supporting page, answer
        assert opened and all(s["retrieval_correct"] == 1.0 for s in opened)
        assert sum(s.get("retrieval_useful", 0.0) for s in signals) == pytest.approx(1.0)


def test_through_a_real_retrieval_server(tmp_path, retrieval_server):
    summary, _ = run_eval(
        tmp_path,
        "policy=scripted",
        "policy.script=oracle",
        "episodes=10",
        f"env.retrieval_url={retrieval_server}",
    )
    assert summary["mean_reward"] == 1.0


@pytest.mark.slow
def test_tiny_model_runs_with_valid_trajectories(tmp_path, tiny_model, hf_model):
    summary, trajs = run_eval(
        tmp_path,
        "policy=hf",
        f"policy.model={tiny_model}",
        "policy.max_new_tokens=32",
        "episodes=4",
        "group_size=2",
        "rollout.max_turns=3",
    )
    assert len(trajs) == 4
    for t in trajs:
        check_token_trajectory(t, hf_model, tol=1e-3)
        assert t.reward <= 1.0


def step(env, name, **arguments):
    return env.step(call(name, **arguments))


@pytest.fixture
def env():
    e = agentgym.make("deep_research", world_size=1000, tasks=20)
    e.reset(seed=0)
    yield e
    e.close()


def test_bad_input_is_feedback(env):
    obs, *_, info = step(env, "search", query="   ")
    assert "query is empty" in obs.messages[0].content and info["tool_errors"] == 1
    obs, *_ = step(env, "search", query="composer", k=10**9)
    assert obs.messages[0].content.count("\n   ") == env.max_k  # huge k is capped
    obs, *_ = step(env, "open_page", url="/wiki/d999999")
    assert "HTTP 404" in obs.messages[0].content
    obs, *_ = step(env, "open_page", url="http://10.1.2.3/secret")
    assert "private and local addresses are blocked" in obs.messages[0].content
    obs, *_ = step(env, "open_page", url="file:///etc/passwd")
    assert "only http(s)" in obs.messages[0].content
    obs, *_, info = step(env, "open_page", url=f"/wiki/{env.question.supporting[0]}", page=99)
    assert "does not exist" in obs.messages[0].content


def test_judge_and_answer(env):
    step(env, "open_page", url=f"/wiki/{env.question.supporting[0]}")
    *_, info = step(env, "judge", useful=True, plan="open the next page")
    assert info["signals"]["judge_correct"] == 1.0
    step(env, "search", query="zzqxj")  # finds nothing
    *_, info = step(env, "judge", useful=True, plan="again")
    assert info["signals"]["judge_correct"] == -1.0
    obs, reward, term, _, info = step(env, "answer", text=env.question.answer)
    assert term and reward == 1.0 and info["em"] == 1.0 and info["success"]


def test_plain_reply_is_a_format_penalty_not_the_end(env):
    obs, reward, term, _, info = env.step("I think it is Paris.")
    assert not term and reward == -env.format_penalty and "answer(text)" in obs.messages[0].content


def test_bad_config_names_the_key():
    with pytest.raises(ConfigError, match="searxng_url"):
        agentgym.make("deep_research", web="internet")
    with pytest.raises(ConfigError, match=r"env\.retrieval"):
        agentgym.make("deep_research", retrieval="tfidf")


class _Server:
    """A local HTTP server for the internet backend's tests (a SearXNG double, a huge page)."""

    def __init__(self, routes):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body, kind = routes.get(self.path.split("?")[0], (b"no", "text/plain"))
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.netloc = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def test_ten_megabyte_page_is_cut_at_the_cap():
    page = b"<html><body><p>" + b"word " * 2_000_000 + b"</p></body></html>"
    server = _Server({"/big": (page, "text/html")})

    async def go():
        f = Fetcher(max_bytes=100_000, allow=(server.netloc,))
        try:
            return await f.get(f"http://{server.netloc}/big")
        finally:
            await f.aclose()

    try:
        _, text, truncated = asyncio.run(go())
    finally:
        server.close()
    assert truncated and len(text) == 100_000


def test_dns_rebinding_cannot_reach_a_local_server(monkeypatch):
    """The host resolves to a public address when vetted and to 127.0.0.1 afterwards: the
    fetcher must connect to the address it vetted, never look the name up again."""
    hits = []
    server = _Server({"/secret": (b"secret", "text/plain")})
    port = int(server.netloc.split(":")[1])
    real, answers = socket.getaddrinfo, iter(["93.184.216.34"])

    def rebinding(host, *args, **kw):
        if (host.decode() if isinstance(host, bytes) else host) != "rebind.example":
            return real(host, *args, **kw)
        hits.append(host)
        ip = next(answers, "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)

    async def go():
        f = Fetcher(timeout=1.0)
        try:
            return await f.get(f"http://rebind.example:{port}/secret")
        finally:
            await f.aclose()

    try:
        with pytest.raises(ToolError) as err:
            asyncio.run(go())
    finally:
        server.close()
    assert hits == ["rebind.example"] and "blocked" not in str(err.value)  # never reached


def test_internet_backend_speaks_searxng_and_blocks_local_pages():
    results = {"results": [{"title": "T", "url": "http://127.0.0.1/x", "content": "snippet"}]}
    server = _Server({"/search": (json.dumps(results).encode(), "application/json")})

    async def go():
        web = InternetWeb(f"http://{server.netloc}")
        found = await web.search("anything", 5)
        with pytest.raises(ToolError, match="blocked"):
            await web.fetch(found[0].url)  # a search result pointing at a local address
        return found

    try:
        found = asyncio.run(go())
    finally:
        server.close()
    assert found[0].title == "T" and found[0].snippet == "snippet"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:99999/",
        "http://[::1",
        "http://exa\x00mple.com/",
        "http://" + "a" * 70 + ".com/",
        "http://\ud83d.com/",
        "/wiki/d1\r\nHost: evil",
        "javascript:alert(1)",
        "",
    ],
)
def test_malformed_urls_are_tool_errors_not_crashes(url):
    env = agentgym.make("deep_research", world_size=200, tasks=20)
    try:
        env.reset(seed=0)
        call = Message(
            role="assistant",
            content="",
            tool_calls=[ToolCall(id="c", name="open_page", arguments={"url": url})],
        )
        obs, reward, terminated, truncated, info = env.step(call)
        assert info["tool_errors"] == 1 and not terminated
        # a URL that is not text at all is refused by argument validation, the rest on opening
        assert obs.messages[0].content.startswith(("Error: cannot open", "Error: invalid arg"))
    finally:
        env.close()


def test_hotpotqa_questions_over_the_users_own_index(tmp_path):
    """The Search-R1 / ReSeek setup: questions from a HotpotQA file, search over a local index
    of its corpus (no web), open_page reads the documents search returned."""
    from agentgym.cli import main
    from tests.data.test_loaders import HOTPOT

    (tmp_path / "hotpot.json").write_text(json.dumps(HOTPOT))
    data, idx = str(tmp_path / "hotpot.json"), str(tmp_path / "idx")
    assert main(["index", f"corpus={data}", f"out={idx}"]) == 0
    env = agentgym.make("deep_research", dataset=data, index=idx, tasks=1)
    try:
        obs, _ = env.reset(seed=0)
        assert "Which city was the director of Film X born in?" in obs.messages[-1].content
        obs, *_ = env.step(call("search", query="Jane Doe director born", k=2))
        assert "doc://" in obs.messages[0].content and "Jane Doe" in obs.messages[0].content
        url = re.search(r"doc://\S+", obs.messages[0].content).group(0).rstrip(")")
        obs, *_ = env.step(call("open_page", url=url))
        assert (
            "born in Springfield" in obs.messages[0].content or "Film X" in obs.messages[0].content
        )
        obs, *_ = env.step(call("open_page", url="doc://never-returned"))
        assert "that search returned" in obs.messages[0].content
        *_, info = env.step(call("answer", text="Springfield"))
        assert info["success"] and info["reward_parts"]["answer_f1"] == 1.0
    finally:
        env.close()
    with pytest.raises(ConfigError, match="need their corpus"):
        agentgym.make("deep_research", dataset=data)
