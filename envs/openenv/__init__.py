"""``openenv``: an OpenEnv server's environment, played through openenv-core's own client.
See ``env.py``."""

from agentgym.envs.openenv.env import OpenEnvEnv

__all__ = ["OpenEnvEnv"]
