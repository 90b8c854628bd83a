"""``gui``: tasks in local web apps in a real browser. See ``env.py``."""

from agentgym.envs.gui.env import GUIEnv

__all__ = ["GUIEnv"]
