"""Reward functions that environments share."""

from agentgym.rewards.qa import best_em, best_f1, f1, mentions, normalize, substring_match

__all__ = ["best_em", "best_f1", "f1", "mentions", "normalize", "substring_match"]
