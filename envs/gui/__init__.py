"""``gui``: tasks in local web apps in a real browser; ``gui_action``: UI-R1's single-step
action prediction from screenshots. See ``env.py`` and ``action_env.py``."""

from agentgym.envs.gui.action_env import GUIActionEnv
from agentgym.envs.gui.env import GUIEnv

__all__ = ["GUIActionEnv", "GUIEnv"]
