"""``env.*`` keys of ``gui``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GUIConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    task_seed: int = 0
    apps: tuple[str, ...] | None = Field(None, description="only these apps' templates")
    screenshot: bool = Field(False, description="attach a PNG of the page to each observation")
    coordinates: bool = Field(False, description="screenshot-only mode: click_at(x, y)")
    viewport: tuple[int, int] = (1024, 768)
    max_turns: int = Field(20, ge=1)
    action_timeout_ms: int = Field(5000, ge=100)
