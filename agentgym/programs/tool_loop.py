"""The plainest tool-calling agent on the OpenAI SDK: ask the model with the env's tools, run
the calls it makes, give it the results, until it answers without a call, its calls end the
episode (the env's answer or submit tool) or it runs out of turns;
print the answer on the last line.

    python -m agentgym.programs.tool_loop    # AGENTGYM_TASK, AGENTGYM_TOOLS_URL, OPENAI_*

The loop agentgym's own engine runs, written as a user's program would: ``bench/gateway.py``
compares the two on the same env and model to measure what the gateway costs.
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
from openai import OpenAI


def main() -> None:
    tools_url = os.environ["AGENTGYM_TOOLS_URL"]
    turns = int(os.environ.get("AGENT_MAX_TURNS", "4"))
    client, http = OpenAI(max_retries=0), httpx.Client(timeout=120)
    tools = http.get(tools_url).json()["tools"]
    opening = os.environ.get("AGENTGYM_MESSAGES")  # the env's prompt, as the engine sends it
    task = [{"role": "user", "content": os.environ["AGENTGYM_TASK"]}]
    messages: list[Any] = json.loads(opening) if opening else task
    answer = ""
    for _ in range(turns):
        reply = client.chat.completions.create(model="agentgym", messages=messages, tools=tools)
        message = reply.choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        answer = message.content or ""
        if not message.tool_calls:
            break
        ended = False
        for call in message.tool_calls:
            assert call.type == "function"  # the gateway answers function calls only
            done = http.post(
                f"{tools_url}/{call.function.name}", json=json.loads(call.function.arguments)
            ).json()
            messages.append({"role": "tool", "tool_call_id": call.id, "content": done["result"]})
            ended = ended or done["ended"]
        if ended:  # the env's own finish tool (an answer, a submit) ended the episode
            break
    print(answer.strip().splitlines()[-1] if answer.strip() else "", flush=True)


if __name__ == "__main__":
    main()
