"""``keychain``: LoongRL's KeyChain long-context environment. See ``env.py``."""

from agentgym.envs.keychain.env import KeyChainEnv

__all__ = ["KeyChainEnv"]
