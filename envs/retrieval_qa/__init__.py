"""``retrieval_qa``: conversational QA over a retrieval index, with ChatR1's intent-aware
turn-level reward. See ``env.py``."""

from agentgym.envs.retrieval_qa.env import RetrievalQAEnv

__all__ = ["RetrievalQAEnv"]
