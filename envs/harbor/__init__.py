"""``harbor``: Harbor task folders (terminal-bench 2.0's format), played in a Docker sandbox
and scored by their own ``tests/test.sh``. See ``env.py``."""

from agentgym.envs.harbor.env import HarborEnv

__all__ = ["HarborEnv"]
