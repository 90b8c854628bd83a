"""An OpenAI Agents SDK program that researches a question with two function tools (search,
open_page: the env's own, over HTTP) and prints its final answer on its last line.

    AGENTGYM_TASK=... OPENAI_BASE_URL=... OPENAI_API_KEY=... AGENTGYM_TOOLS_URL=... \\
        python -m agentgym.programs.research_agent

A plain Agents SDK program: the model is ``OpenAIChatCompletionsModel`` on the OpenAI client
the variables configure; nothing in it knows agentgym but the tools' address.
"""

from __future__ import annotations

import asyncio
import os

import httpx
from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI

TOOLS = os.environ.get("AGENTGYM_TOOLS_URL", "")
INSTRUCTIONS = (
    "Answer the question by researching it: search for pages, open the ones that look useful, "
    "then reply with the answer alone, a short phrase."
)


def _tool(name: str, **arguments: object) -> str:
    reply = httpx.post(f"{TOOLS}/{name}", json=arguments, timeout=120)
    reply.raise_for_status()
    return str(reply.json()["result"])


@function_tool
def search(query: str) -> str:
    """Search the web.

    Args:
        query: What to look for.
    """
    return _tool("search", query=query)


@function_tool
def open_page(url: str) -> str:
    """Read a page.

    Args:
        url: The page's URL, as search gave it.
    """
    return _tool("open_page", url=url)


async def main() -> None:
    set_tracing_disabled(True)
    model = OpenAIChatCompletionsModel(model="agentgym", openai_client=AsyncOpenAI())
    agent = Agent(
        name="researcher", instructions=INSTRUCTIONS, tools=[search, open_page], model=model
    )
    turns = int(os.environ.get("AGENT_MAX_TURNS", "6"))
    try:
        result = await Runner.run(agent, os.environ["AGENTGYM_TASK"], max_turns=turns)
        answer = str(result.final_output)
    except Exception as exc:  # the SDK's own limits (turns) end the run without an answer
        print(f"no answer: {type(exc).__name__}", flush=True)
        answer = ""
    print(answer.strip().splitlines()[-1] if answer.strip() else "", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
