"""``agentgym serve retrieval``: an index over HTTP with Search-R1's API.

``POST /retrieve`` with ``{"queries": [...], "topk": 3, "return_scores": true}`` (or
``{"query": "..."}``) answers ``{"result": [[{"document": {"id", "contents"}, "score"}, ...]]}``,
one list per query, so Search-R1's, verl's and SkyRL-Gym's search tools work against it.
"""

from __future__ import annotations

from typing import Any

from agentgym._imports import require
from agentgym.retrieval.index import Retriever

MAX_K = 100
MAX_QUERIES = 512


def make_app(retriever: Retriever) -> Any:
    """The ASGI app serving ``retriever``."""
    fastapi = require("fastapi", "retrieval")
    app = fastapi.FastAPI(title="agentgym retrieval")

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "passages": len(retriever), "method": retriever.method}

    @app.post("/retrieve")
    def retrieve(body: dict[str, Any]) -> dict[str, Any]:
        queries = body.get("queries", [body["query"]] if "query" in body else None)
        if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
            raise fastapi.HTTPException(422, "expected 'queries': a list of strings (or 'query')")
        if len(queries) > MAX_QUERIES:
            raise fastapi.HTTPException(422, f"at most {MAX_QUERIES} queries per request")
        k = max(1, min(int(body.get("topk", 3)), MAX_K))
        scores = body.get("return_scores", True)
        result = [
            [
                {"document": {"id": h.id, "contents": f"{h.title}\n{h.text}"}}
                | ({"score": h.score} if scores else {})
                for h in hits
            ]
            for hits in retriever.search([q.strip() for q in queries], k)
        ]
        return {"result": result}

    return app


def serve(retriever: Retriever, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve until interrupted."""
    uvicorn = require("uvicorn", "retrieval")
    uvicorn.run(make_app(retriever), host=host, port=port, log_level="warning")
