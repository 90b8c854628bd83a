"""``swe``: repository patching in a sandbox. See ``env.py``."""

from agentgym.envs.swe.env import SWEEnv

__all__ = ["SWEEnv"]
