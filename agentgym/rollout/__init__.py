"""Rollouts: the async engine, its settings, the durable trajectory writer, and summaries."""

from agentgym.rollout.config import RolloutConfig
from agentgym.rollout.engine import (
    EnvPool,
    Episode,
    Workers,
    env_factory,
    episode_seed,
    rollout,
    run_episode,
)
from agentgym.rollout.metrics import pass_at_k, summarize
from agentgym.rollout.stream import GroupStream
from agentgym.rollout.writer import TrajectoryWriter, read_trajectories

__all__ = [
    "EnvPool",
    "Episode",
    "GroupStream",
    "RolloutConfig",
    "TrajectoryWriter",
    "Workers",
    "env_factory",
    "episode_seed",
    "pass_at_k",
    "read_trajectories",
    "rollout",
    "run_episode",
    "summarize",
]
