"""Learner ranks as Ray actors (``learner.ranks=N``), for a cluster that Ray runs.

This process is rank 0 and drives, as under ``torchrun`` (rollouts, metrics, checkpoints, the
sampler); ranks 1..N-1 are actors on the run's Ray cluster (``rollout.ray_address``; a GPU
each when the learner runs on CUDA) that hold a replica or a shard (``learner.fsdp``) and
follow it (``distributed.follow``). All of them meet in ``torch.distributed`` at this node's
address, where ``torchrun``'s ranks would meet at its ``MASTER_ADDR``. A rank that fails ends
the run with its error; the actors are killed when the run ends however it ends.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentgym._imports import require
from agentgym.cluster import ensure_ray, meeting_point
from agentgym.errors import ConfigError
from agentgym.trainers import distributed

Follow = Callable[[dict[str, Any]], None]
"""A follower's life, given the run's config (a JSON tree)."""


class _Rank:
    """Runs inside a Ray worker process: one follower rank."""

    def run(self, follow: Follow, config: dict[str, Any], env: dict[str, str], cwd: str) -> None:
        """Join the ranks and follow rank 0 until it stops."""
        if os.path.isdir(cwd):  # the driver's, so that relative paths name the same files
            os.chdir(cwd)
        os.environ.update(env)
        follow(config)


@dataclass
class Ranks:
    """The follower actors of a run, and the calls they are running."""

    actors: list[Any] = field(default_factory=list)
    runs: list[Any] = field(default_factory=list)
    environ: dict[str, str | None] = field(default_factory=dict)
    """This process's variables before it became rank 0 (put back by ``close``)."""

    def join(self, timeout: float = 300) -> None:
        """Wait for the followers to end (after ``distributed.stop``); a rank's error is
        raised here."""
        if self.runs and require("torch.distributed", "train").is_initialized():
            require("ray", "ray").get(self.runs, timeout=timeout)
        # else rank 0 failed before the ranks met: close() ends them

    def close(self) -> None:
        """Kill the actors (ended or not) and leave the ranks' process group."""
        if not self.actors:
            return
        ray = require("ray", "ray")
        for actor in self.actors:
            ray.kill(actor)
        self.actors, self.runs = [], []
        dist = require("torch.distributed", "train")
        if dist.is_initialized():
            dist.destroy_process_group()
        for key, value in self.environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def start(
    n: int, cuda: bool, ray_address: str | None, follow: Follow, config: dict[str, Any]
) -> Ranks:
    """Start ranks 1..N-1 as actors that each run ``follow(config)`` (a GPU each when
    ``cuda``), and make this process rank 0 of N."""
    if n == 1:
        return Ranks()
    if distributed.world()[1] > 1:
        raise ConfigError(
            "learner.ranks",
            f"is {n} under torchrun, which starts the learner's ranks itself",
            "drop learner.ranks (torchrun --nproc_per_node sets them) or run without torchrun",
        )
    ray = require("ray", "ray")
    ensure_ray(ray_address)
    host, port = meeting_point()
    meet = {
        "WORLD_SIZE": str(n),
        "MASTER_ADDR": host,
        "MASTER_PORT": str(port),
        "LOCAL_RANK": "0",  # an actor sees only its own GPU, as cuda:0
    }
    actor_class = ray.remote(num_cpus=1, num_gpus=1 if cuda else 0)(_Rank)
    ranks = Ranks()
    for rank in range(1, n):
        actor = actor_class.remote()
        ranks.actors.append(actor)
        env = {**meet, "RANK": str(rank)}
        ranks.runs.append(actor.run.remote(follow, config, env, os.getcwd()))
    meet["RANK"] = "0"
    ranks.environ = {key: os.environ.get(key) for key in meet}
    os.environ.update(meet)
    return ranks
