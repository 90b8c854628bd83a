"""``env.*`` keys of ``gui``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from agentgym.env import AgentEnvConfig


class GUIConfig(AgentEnvConfig):
    task_seed: int = Field(0, description="seed of the drawn tasks")
    apps: tuple[str, ...] | None = Field(None, description="only these apps' templates")
    observation: Literal["tree", "screenshot", "both"] = Field(
        "tree",
        description="what the model sees: the page's tree, a PNG of the page, or both "
        "(screenshot alone: the pointer and keyboard tools click_at and write)",
    )
    screenshot: bool = Field(False, description="observation=both, spelled as a switch")
    coordinates: bool = Field(False, description="add click_at(x, y) and write(text)")
    viewport: tuple[int, int] = Field((1024, 768), description="the page size in pixels")
    max_turns: int = Field(20, ge=1, description="assistant turns before the episode is cut")
    action_timeout_ms: int = Field(5000, ge=100, description="milliseconds one action may take")

    @model_validator(mode="before")
    @classmethod
    def _screenshot_means_both(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("screenshot") and "observation" not in data:
            return {**data, "observation": "both"}
        return data

    @property
    def shows_screenshot(self) -> bool:
        return self.observation != "tree" or self.coordinates

    @property
    def pointer(self) -> bool:
        """Whether the pixel tools (click_at, write) are offered."""
        return self.coordinates or self.observation == "screenshot"
