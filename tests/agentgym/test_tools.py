import asyncio

import pytest

from agentgym import ToolError, tool


@tool
def search(query: str, k: int = 5, exact: bool = False) -> str:
    """Search the index.

    Args:
        query: What to look for,
            over two lines.
        k: How many results.
        exact: Match exactly.
    """
    return f"{query}:{k}:{exact}"


@tool
async def fetch(url: str) -> dict:
    """Fetch a page."""
    return {"url": url}


def test_schema_from_signature_and_docstring():
    spec = search.spec
    assert spec.name == "search" and spec.description == "Search the index."
    props = spec.parameters["properties"]
    assert props["query"] == {"type": "string", "description": "What to look for, over two lines."}
    assert props["k"]["type"] == "integer" and props["k"]["default"] == 5
    assert spec.parameters["required"] == ["query"]
    assert spec.parameters["additionalProperties"] is False
    assert spec.to_openai()["function"]["name"] == "search"


@pytest.mark.parametrize(
    "args, problem",
    [
        ({}, "query: field required"),
        ({"query": "x", "k": "many"}, "k: input should be a valid integer"),
        ({"query": "x", "limit": 3}, "limit: extra inputs are not permitted"),
        (["x"], "must be a json object"),
    ],
)
def test_bad_arguments_raise_tool_error_for_the_model(args, problem):
    with pytest.raises(ToolError) as exc:
        search.validate(args)
    assert problem in str(exc.value).lower()


def test_sync_and_async_tools_run_and_return_text():
    assert asyncio.run(search.run(None, search.validate({"query": "a", "k": "3"}))) == "a:3:False"
    assert asyncio.run(fetch.run(None, {"url": "u"})) == '{"url": "u"}'


def test_varargs_are_refused():
    with pytest.raises(TypeError):
        tool(lambda *a: None)
