"""Agents that are programs: an OpenAI-compatible gateway in front of agentgym's policies
(``server.py``) that records every model call's exact tokens (``capture.py``), and the runner
that starts a program per episode with the gateway's address (``program.py``)."""

from agentgym.gateway.capture import Call, EpisodeRecord
from agentgym.gateway.server import Episode, Gateway

__all__ = ["Call", "Episode", "EpisodeRecord", "Gateway"]
