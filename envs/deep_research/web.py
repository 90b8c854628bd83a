"""Where ``search`` and ``open_page`` go: the offline world (default) or the real web.

A ``Web`` has two async methods: ``search(query, k)`` and ``fetch(url)``. ``LocalWeb`` searches
an index of the fictional world and fetches pages from the world's local HTTP server;
``InternetWeb`` asks a SearXNG instance (its JSON API) and fetches real pages. Both fetch with
``Fetcher``: a timeout, a size cap (the body is streamed and cut, never read whole), at most 5
redirects, and no private, loopback or link-local address unless the host is allowed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any, Protocol
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

import httpx

from agentgym.errors import ToolError
from agentgym.retrieval import RemoteRetriever


@dataclass(frozen=True)
class Result:
    """One search result; ``doc_id`` is known for the offline world (process rewards)."""

    title: str
    url: str
    snippet: str
    doc_id: str | None = None


@dataclass(frozen=True)
class Page:
    url: str
    title: str
    text: str
    links: list[tuple[str, str]]
    truncated: bool = False


class Web(Protocol):
    async def search(self, query: str, k: int) -> list[Result]: ...

    async def fetch(self, url: str) -> Page: ...

    def doc_id(self, url: str) -> str | None: ...

    async def aclose(self) -> None: ...


class _Text(HTMLParser):
    """Visible text, title and links of an HTML page (scripts and styles dropped)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.title, self.links = "", []  # type: ignore[var-annotated]
        self._skip, self._in_title = 0, False
        self._href: str | None = None
        self._label: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "noscript"):
            self._skip += 1
        self._in_title |= tag == "title"
        if tag == "a":
            self._href, self._label = dict(attrs).get("href"), []
        if tag in ("p", "div", "br", "li", "h1", "h2", "h3", "tr"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "noscript"):
            self._skip = max(0, self._skip - 1)
        if tag == "title":
            self._in_title = False
        if tag == "a" and self._href:
            self.links.append(("".join(self._label).strip(), self._href))
            self._href = None

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.parts.append(data)
            if self._href is not None:
                self._label.append(data)


def html_to_page(url: str, html: str, truncated: bool = False) -> Page:
    parser = _Text()
    parser.feed(html)
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    text = "\n".join(line for line in lines if line)
    links = [(label, urljoin(url, href)) for label, href in parser.links]
    return Page(url, parser.title.strip(), text, links, truncated)


def _blocked(ip: str) -> bool:
    a = ipaddress.ip_address(ip)
    return not a.is_global or a.is_multicast


class Fetcher:
    """GET pages with bounds. ``allow`` lists ``host:port`` origins exempt from the block."""

    def __init__(
        self,
        timeout: float = 10.0,
        max_bytes: int = 2_000_000,
        allow: tuple[str, ...] = (),
        block_private: bool = True,
    ) -> None:
        self.timeout, self.max_bytes, self.allow = timeout, max_bytes, allow
        self.block_private = block_private
        self._client: httpx.AsyncClient | None = None

    async def _vet(self, url: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        """Resolve ``url``'s host once, refuse a blocked address, and return the request to
        send: to the vetted address itself (Host header and TLS name kept), so that a second
        lookup cannot answer differently (DNS rebinding)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ToolError(f"cannot open {url!r}: only http(s) URLs with a host")
        if not self.block_private or parts.netloc in self.allow:
            return url, {}, {}
        try:
            infos = await asyncio.to_thread(socket.getaddrinfo, parts.hostname, parts.port or 80)
        except OSError as exc:
            raise ToolError(f"cannot open {url!r}: the host does not resolve") from exc
        if any(_blocked(str(info[4][0])) for info in infos):
            raise ToolError(f"cannot open {url!r}: private and local addresses are blocked")
        ip = str(infos[0][4][0])
        host = f"[{ip}]" if ":" in ip else ip
        pinned = parts._replace(netloc=host + (f":{parts.port}" if parts.port else ""))
        headers = {"Host": parts.netloc.rpartition("@")[2]}
        return urlunsplit(pinned), headers, {"sni_hostname": parts.hostname}

    async def get(self, url: str) -> tuple[str, str, bool]:
        """(final url, body text, truncated?). Model-facing failures raise ``ToolError``: a
        malformed URL, a refused address, an HTTP error, and a page that takes longer than
        three timeouts in all (a server that drips a byte at a time)."""
        shown = url[:200]
        try:
            async with asyncio.timeout(3 * self.timeout):
                return await self._get(url)
        except TimeoutError:
            raise ToolError(f"cannot open {shown!r}: it took too long") from None
        except (ValueError, httpx.InvalidURL) as exc:  # UnicodeError is a ValueError
            raise ToolError(f"cannot open {shown!r}: not a valid URL ({exc})"[:400]) from None

    async def _get(self, url: str) -> tuple[str, str, bool]:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        for _ in range(6):
            target, headers, extensions = await self._vet(url)
            try:
                req = self._client.build_request("GET", target, headers=headers)
                req.extensions.update(extensions)
                async with _stream(self._client, req) as r:
                    if r.is_redirect and "location" in r.headers:
                        url = urljoin(url, r.headers["location"])
                        continue
                    if r.status_code >= 400:
                        raise ToolError(f"cannot open {url!r}: HTTP {r.status_code}")
                    body, truncated = await self._read(r)
                    return url, body.decode(r.encoding or "utf-8", errors="replace"), truncated
            except httpx.HTTPError as exc:
                raise ToolError(f"cannot open {url!r}: {type(exc).__name__}") from exc
        raise ToolError(f"cannot open {url!r}: too many redirects")

    async def _read(self, r: httpx.Response) -> tuple[bytes, bool]:
        chunks, size = [], 0
        async for chunk in r.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= self.max_bytes:
                return b"".join(chunks)[: self.max_bytes], True
        return b"".join(chunks), False

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


@asynccontextmanager
async def _stream(client: httpx.AsyncClient, req: httpx.Request) -> AsyncIterator[httpx.Response]:
    r = await client.send(req, stream=True)
    try:
        yield r
    finally:
        await r.aclose()


class Searcher(Protocol):
    async def asearch(self, query: str, k: int) -> list[Any]: ...


class LocalWeb:
    """The fictional world: a retriever over its pages and its local web server."""

    def __init__(self, searcher: Searcher, site_url: str, snippet_words: int = 40) -> None:
        self.searcher, self.site_url, self.snippet_words = searcher, site_url, snippet_words
        self.fetcher = Fetcher(allow=(urlsplit(site_url).netloc,))

    async def search(self, query: str, k: int) -> list[Result]:
        hits = await self.searcher.asearch(query, k)
        return [
            Result(
                h.title, f"{self.site_url}/wiki/{h.id}", _snippet(h.text, self.snippet_words), h.id
            )
            for h in hits
        ]

    async def fetch(self, url: str) -> Page:
        try:
            full = urljoin(self.site_url + "/", url)
        except ValueError as exc:
            raise ToolError(f"cannot open {url[:200]!r}: not a valid URL ({exc})") from None
        final, html, truncated = await self.fetcher.get(full)
        return html_to_page(final, html, truncated)

    def doc_id(self, url: str) -> str | None:
        try:
            path = urlsplit(urljoin(self.site_url + "/", url)).path
        except ValueError:
            return None
        return path.removeprefix("/wiki/") if path.startswith("/wiki/") else None

    async def aclose(self) -> None:
        await self.fetcher.aclose()
        if isinstance(self.searcher, RemoteRetriever):  # a client per env; local ones are shared
            await self.searcher.aclose()


class IndexWeb:
    """A corpus of the user's (an index folder or a retrieval server), no web: the Search-R1
    / ReSeek setup over a local Wikipedia. Results are ``doc://<id>`` URLs; ``open_page``
    reads a document that a search returned (its text came with the hit)."""

    def __init__(self, searcher: Searcher, snippet_words: int = 40) -> None:
        self.searcher, self.snippet_words = searcher, snippet_words
        self._seen: dict[str, tuple[str, str]] = {}

    async def search(self, query: str, k: int) -> list[Result]:
        hits = await self.searcher.asearch(query, k)
        self._seen.update({str(h.id): (h.title, h.text) for h in hits})
        return [
            Result(
                h.title,
                f"doc://{quote(str(h.id), safe='')}",
                _snippet(h.text, self.snippet_words),
                str(h.id),
            )
            for h in hits
        ]

    async def fetch(self, url: str) -> Page:
        found = self._seen.get(self.doc_id(url) or "")
        if found is None:
            raise ToolError(f"cannot open {url[:200]!r}: open a doc:// URL that search returned")
        return Page(url, found[0], found[1], [])

    def doc_id(self, url: str) -> str | None:
        return unquote(url.removeprefix("doc://")) if url.startswith("doc://") else None

    async def aclose(self) -> None:
        if isinstance(self.searcher, RemoteRetriever):
            await self.searcher.aclose()


class InternetWeb:
    """The real web: SearXNG's JSON API for search, httpx for pages (private IPs blocked)."""

    def __init__(self, searxng_url: str, timeout: float = 10.0, max_bytes: int = 2_000_000) -> None:
        self.searxng_url = searxng_url.rstrip("/")
        self.fetcher = Fetcher(timeout=timeout, max_bytes=max_bytes)
        self._client = httpx.AsyncClient(timeout=timeout)

    async def search(self, query: str, k: int) -> list[Result]:
        try:
            r = await self._client.get(
                f"{self.searxng_url}/search", params={"q": query, "format": "json"}
            )
            r.raise_for_status()
            items = r.json().get("results", [])
        except (httpx.HTTPError, ValueError) as exc:
            raise ToolError(f"the search service failed ({type(exc).__name__}); try again") from exc
        return [
            Result(
                str(x.get("title", "")),
                str(x.get("url", "")),
                _snippet(str(x.get("content", "")), 40),
            )
            for x in items[:k]
        ]

    async def fetch(self, url: str) -> Page:
        final, html, truncated = await self.fetcher.get(url)
        return html_to_page(final, html, truncated)

    def doc_id(self, url: str) -> str | None:
        return None

    async def aclose(self) -> None:
        await self.fetcher.aclose()
        await self._client.aclose()


def _snippet(text: str, words: int) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + (" ..." if len(parts) > words else "")
