"""``rollout.*``: the limits of an episode and of a run, the one settings model of the
rollout engine (``agentgym eval``, ``agentgym train`` and ``rollout()`` all take it)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RolloutConfig(BaseModel):
    """Limits of one episode and of the run (``rollout.<key>=``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_turns: int | None = Field(
        None,
        ge=1,
        description="assistant turns before an episode is cut (None: the env's max_turns); "
        "the env truncates there and scores the final state",
    )
    max_tokens: int = Field(
        4096, ge=16, description="token budget of a whole conversation (prompt + every turn)"
    )
    concurrency: int = Field(8, ge=1, description="episodes in flight at once")
    backend: Literal["local", "ray"] = Field(
        "local", description="ray: every environment in a Ray actor of rollout.ray_address"
    )
    ray_address: str | None = Field(
        None, description="the Ray cluster to use (None: start a local one of this run's own)"
    )
    max_failure_rate: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="share of episodes that may fail for the infrastructure's sake (a dead "
        "container, a server down; recorded as stop_reason=error, played again by a rerun) "
        "before the run stops; one more is allowed when it is not 0 (a run of 8 survives one)",
    )
    stall_timeout_s: float | None = Field(
        120.0,
        gt=0,
        description="seconds without a turn, model call or episode ending while episodes are "
        "in flight before the run fails naming what each waits for (None: never)",
    )
    split: Literal["train", "eval"] | None = Field(
        None, description="play only the env's training or held-out tasks (None: all)"
    )
    temperature: float | None = Field(
        None, ge=0.0, description="sample at this temperature, top-p 1 (None: the policy's own)"
    )
