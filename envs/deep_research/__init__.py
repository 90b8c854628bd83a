"""``deep_research``: multi-hop questions about an offline fictional world, answered with
search, page browsing, judgement and an answer tool. See ``env.py``."""

from agentgym.envs.deep_research.env import DeepResearchEnv

__all__ = ["DeepResearchEnv"]
