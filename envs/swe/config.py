"""``env.*`` keys of ``swe``, validated before any work starts."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agentgym.sandbox import Limits


class SWEConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tasks: int = Field(50, ge=1, description="generated repository tasks")
    task_seed: int = 0
    difficulty: Literal[1, 2, 3] = 1
    dataset: str | None = Field(None, description="SWE-bench/SWE-Gym instance JSONL instead")
    backend: Literal["docker", "local"] = "docker"
    image: str = "agentgym/swe:latest"
    limits: Limits = Limits()
    pool: int = Field(1, ge=0, description="warm sandboxes kept ready per environment")
    mode: Literal["tools", "patch"] = "tools"
    reward: Literal["execution", "similarity"] = "execution"
    partial_credit: bool = False
    max_turns: int = Field(30, ge=1)
    output_chars: int = Field(4000, ge=200, description="most characters a tool returns")
    command_timeout: float = Field(20.0, gt=0, description="seconds one bash/test call may run")
