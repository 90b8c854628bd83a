"""Agent programs that agentgym trains as they are (``env=harness``): each reads the gateway's
address from the variables the OpenAI clients read, and the task from ``$AGENTGYM_TASK``.

* ``research_agent``: an OpenAI Agents SDK program answering deep_research questions with
  function tools that call the env's search and open_page over HTTP;
* ``tool_loop``: the plainest tool-calling loop on the OpenAI SDK (the env's tools, listed and
  run over HTTP): agentgym's own engine loop, written as a user's program;
* ``mini_swe.yaml``: mini-swe-agent's config for swe tasks (its shell commands run in the
  task's sandbox through ``agentgym.gateway.docker_shim``).

``{programs}`` in ``env.command`` is this folder.
"""

from pathlib import Path

HERE = Path(__file__).parent
