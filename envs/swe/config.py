"""``env.*`` keys of ``swe``, validated before any work starts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from agentgym.env import AgentEnvConfig
from agentgym.sandbox import Limits


class SWEConfig(AgentEnvConfig):
    """``env.*`` keys of ``swe``."""

    tasks: int = Field(50, ge=1, description="generated repository tasks")
    task_seed: int = Field(0, description="seed of the generated repositories")
    difficulty: Literal[0, 1, 2, 3] = Field(
        1,
        description="0: one module, one bug, the issue names the exact fix (a tier to learn "
        "the tools on); 1: one module, one bug; 2: three modules; 3: bugs in two files",
    )
    dataset: str | None = Field(None, description="SWE-bench/SWE-Gym instance JSONL instead")
    backend: Literal["docker", "local"] = Field(
        "docker", description="docker: isolated; local: development only, no isolation"
    )
    image: str = Field("agentgym/swe:latest", description="built by `agentgym sandbox build`")
    limits: Limits = Limits()
    pool: int = Field(1, ge=0, description="warm sandboxes kept ready per environment")
    mode: Literal["tools", "patch"] = Field(
        "tools", description="patch: one turn, the whole diff at once (SWE-RL)"
    )
    reward: Literal["execution", "similarity"] = Field(
        "execution", description="execution: the tests; similarity: SWE-RL's diff similarity"
    )
    partial_credit: bool = Field(
        False, description="reward the share of failing tests fixed, not all or nothing"
    )
    max_turns: int = Field(
        30, ge=1, description="assistant turns before the episode is cut (patch mode: 1)"
    )
    output_chars: int = Field(4000, ge=200, description="most characters a tool returns")
    command_timeout: float = Field(20.0, gt=0, description="seconds one bash/test call may run")

    @model_validator(mode="before")
    @classmethod
    def _patch_mode_turns(cls, data: Any) -> Any:
        """Patch mode is one turn: the model writes the patch."""
        if isinstance(data, dict) and data.get("mode") == "patch":
            return {**data, "max_turns": 1}
        return data
