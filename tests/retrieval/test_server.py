"""`agentgym serve retrieval` as a real process, queried with Search-R1's API and our client."""

import asyncio
import signal

import httpx
import pytest

from agentgym.errors import EnvError
from agentgym.retrieval import RemoteRetriever
from tests.conftest import start_retrieval_server


def test_search_r1_api(retrieval_server):
    body = {"queries": ["composer", "founded by"], "topk": 3, "return_scores": True}
    result = httpx.post(f"{retrieval_server}/retrieve", json=body).json()["result"]
    assert len(result) == 2 and all(len(r) == 3 for r in result)
    doc = result[0][0]
    assert set(doc) == {"document", "score"} and "\n" in doc["document"]["contents"]
    single = httpx.post(
        f"{retrieval_server}/retrieve", json={"query": "composer", "topk": 1}
    ).json()
    assert single["result"][0][0]["document"] == doc["document"]
    no_scores = httpx.post(
        f"{retrieval_server}/retrieve", json={"queries": ["x"], "return_scores": False}
    )
    assert all("score" not in h for h in no_scores.json()["result"][0])


def test_bad_requests_and_huge_k(retrieval_server):
    assert (
        httpx.post(f"{retrieval_server}/retrieve", json={"queries": "composer"}).status_code == 422
    )
    huge = httpx.post(
        f"{retrieval_server}/retrieve", json={"queries": ["composer"], "topk": 10**6}
    ).json()
    assert len(huge["result"][0]) <= 100
    empty = httpx.post(f"{retrieval_server}/retrieve", json={"queries": [""]}).json()
    assert empty["result"] == [[]]
    url = f"{retrieval_server}/retrieve"
    for topk in ("abc", None, 0, -3, 1.5):
        assert httpx.post(url, json={"queries": ["x"], "topk": topk}).status_code == 422, topk
    for raw in ('{"queries": ["x"], "topk": NaN}', '{"queries": ["x"], "topk": 1e400}'):
        r = httpx.post(url, content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 422, raw
    assert httpx.post(url, json={"queries": ["x" * 5000]}).status_code == 422  # query length
    assert httpx.post(url, json={"queries": ["x"] * 600}).status_code == 422  # query count
    assert httpx.post(url, json={}).status_code == 422
    big = httpx.post(url, content=b"{" + b" " * (2 << 20) + b"}")
    assert big.status_code == 413  # refused before it is read


def test_client_matches_the_server(retrieval_server):
    async def go():
        client = RemoteRetriever(retrieval_server)
        try:
            return await client.asearch("composer", 4)
        finally:
            await client.aclose()

    hits = asyncio.run(go())
    assert len(hits) == 4 and hits[0].score >= hits[-1].score and hits[0].title


@pytest.mark.slow
def test_a_frozen_or_killed_server_is_an_env_error_naming_it():
    proc, url = start_retrieval_server()

    async def faults():
        client = RemoteRetriever(url, timeout=2)
        try:
            assert await client.asearch("composer", 2)
            proc.send_signal(signal.SIGSTOP)
            with pytest.raises(EnvError, match=f"at {url} did not answer a search in 2 s"):
                await client.asearch("composer", 2)
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait(10)
            with pytest.raises(EnvError, match=f"at {url} is gone"):
                await client.asearch("composer", 2)
        finally:
            await client.aclose()

    try:
        asyncio.run(faults())
    finally:
        proc.kill()
