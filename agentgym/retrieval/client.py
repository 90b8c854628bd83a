"""The client of ``agentgym serve retrieval`` (and of any Search-R1-style retrieval server)."""

from __future__ import annotations

from typing import Any

import httpx2

from agentgym.errors import EnvError
from agentgym.retrieval.corpus import Hit


class RemoteRetriever:
    """Search a retrieval server: ``POST {url}/retrieve`` with Search-R1's JSON body."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._client: httpx2.AsyncClient | None = None

    async def asearch(self, query: str, k: int) -> list[Hit]:
        if self._client is None:
            self._client = httpx2.AsyncClient(timeout=self._timeout)
        body = {"queries": [query], "topk": k, "return_scores": True}
        try:
            r = await self._client.post(f"{self.url}/retrieve", json=body)
            r.raise_for_status()
            return [_hit(x) for x in r.json()["result"][0]]
        except Exception as exc:
            raise EnvError("retrieval", 0, "search", self._fault(exc)) from exc

    def _fault(self, exc: Exception) -> str:
        """What went wrong with the server, and what to do."""
        where = f"the retrieval server at {self.url}"
        if isinstance(exc, httpx2.ConnectError):
            return f"{where} is gone (nothing answers: {exc!r}); start it again"
        if isinstance(exc, httpx2.TimeoutException):
            return f"{where} did not answer a search in {self._timeout:g} s (frozen or overloaded)"
        return f"{where} failed a search: {exc!r}"

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _hit(item: dict[str, Any]) -> Hit:
    doc = item["document"]
    title, _, text = str(doc["contents"]).partition("\n")
    return Hit(str(doc["id"]), title, text, float(item.get("score", 0.0)))
