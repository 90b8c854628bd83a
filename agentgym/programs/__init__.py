"""Agent programs that agentgym trains as they are (``env=harness``): each reads the gateway's
address from the variables the OpenAI clients read, and the task from ``$AGENTGYM_TASK``.

* ``research_agent``: an OpenAI Agents SDK program answering deep_research questions with
  function tools that call the env's search and open_page over HTTP;
* ``mini_swe.yaml``: mini-swe-agent's config for swe tasks (its shell commands run in the
  task's sandbox through ``agentgym.gateway.docker_shim``).
"""

from pathlib import Path

HERE = Path(__file__).parent
MINI_SWE_CONFIG = HERE / "mini_swe.yaml"
