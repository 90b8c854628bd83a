"""``agentgym serve retrieval``: an index over HTTP with Search-R1's API.

``POST /retrieve`` with ``{"queries": [...], "topk": 3, "return_scores": true}`` (or
``{"query": "..."}``) answers ``{"result": [[{"document": {"id", "contents"}, "score"}, ...]]}``,
one list per query, so Search-R1's, verl's and SkyRL-Gym's search tools work against it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, model_validator

from agentgym._imports import require
from agentgym.retrieval.index import Retriever

MAX_K = 100
MAX_QUERIES = 512
MAX_QUERY_CHARS = 4096
MAX_BODY_BYTES = 1 << 20

Query = Annotated[str, StringConstraints(max_length=MAX_QUERY_CHARS)]


class RetrieveRequest(BaseModel):
    """A ``/retrieve`` body (Search-R1's fields); anything else is a 422, not a 500."""

    queries: list[Query] | None = Field(None, min_length=1, max_length=MAX_QUERIES)
    query: Query | None = None
    topk: int = Field(3, ge=1, description=f"more than {MAX_K} is served as {MAX_K}")
    return_scores: bool = True

    @model_validator(mode="after")
    def _some_query(self) -> RetrieveRequest:
        if self.queries is None and self.query is None:
            raise ValueError("expected 'queries': a list of strings (or 'query')")
        return self


def make_app(retriever: Retriever) -> Any:
    """The ASGI app serving ``retriever``."""
    fastapi = require("fastapi", "retrieval")
    app = fastapi.FastAPI(title="agentgym retrieval")

    @app.middleware("http")
    async def cap_body(request: Any, call_next: Any) -> Any:
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > MAX_BODY_BYTES):
            return fastapi.responses.JSONResponse(
                {"detail": f"the body must be at most {MAX_BODY_BYTES} bytes"}, status_code=413
            )
        return await call_next(request)

    @app.exception_handler(fastapi.exceptions.RequestValidationError)
    async def invalid(request: Any, exc: Any) -> Any:
        # the messages only: echoing the input fails on NaN or infinity (a 500 instead)
        errors = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        return fastapi.responses.JSONResponse({"detail": errors}, status_code=422)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "passages": len(retriever), "method": retriever.method}

    @app.post("/retrieve")
    def retrieve(body: RetrieveRequest) -> dict[str, Any]:
        queries = body.queries if body.queries is not None else [body.query or ""]
        result = [
            [
                {"document": {"id": h.id, "contents": f"{h.title}\n{h.text}"}}
                | ({"score": h.score} if body.return_scores else {})
                for h in hits
            ]
            for hits in retriever.search([q.strip() for q in queries], min(body.topk, MAX_K))
        ]
        return {"result": result}

    return app


def serve(retriever: Retriever, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve until interrupted (SIGTERM or Ctrl-C: requests in flight get 5 s to finish).
    A request's work is bounded by its validation (at most MAX_QUERIES queries of
    MAX_QUERY_CHARS characters, topk at most MAX_K), so a client that leaves cannot start
    minutes of work."""
    uvicorn = require("uvicorn", "retrieval")
    uvicorn.run(
        make_app(retriever),
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
