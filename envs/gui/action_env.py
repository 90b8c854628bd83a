"""``gui_action``: UI-R1's single-step GUI action prediction.

The user message carries the instruction, the screenshot (and with ``tree=true`` the
accessibility tree); the policy answers ``<action>{"action_type": ..., "x": ..., "y": ...,
"text": ...}</action>`` with ``action_type`` in click, input_text, select, scroll, finish.
Reward (UI-R1's rule-based reward, the sum of three parts, each 0 or 1): ``format`` (one
well-formed action), ``action_type`` (it matches the gold type) and ``coordinate`` (the point
is inside the target's box, and the text or option matches where the action has one;
actions without a target score it when the type matches).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from agentgym.env import AgentEnv, AgentEnvConfig
from agentgym.envs.gui.actions import TYPES, ActionSample, load_samples, make_samples
from agentgym.envs.gui.baselines import ACTION_BASELINES
from agentgym.types import Message

ACTION = re.compile(r"<action>(.*?)</action>", re.S)
PROMPT = (
    "Instruction: {instruction}\nLook at the screenshot and give the next action as "
    '<action>{{"action_type": "click|input_text|select|scroll|finish", "x": X, "y": Y, '
    '"text": "..."}}</action> (x, y in screenshot pixels; text for input_text, select and '
    "finish).{tree}"
)


class GUIActionConfig(AgentEnvConfig):
    max_turns: int = Field(1, ge=1, description="assistant turns before the episode is cut")

    samples: int = Field(200, ge=1, description="generated samples (rendered once, cached)")
    seed: int = Field(0, description="seed of the rendered samples")
    dataset: str | None = Field(None, description="a ScreenSpot/AndroidControl-style file")
    box_format: str = Field("xyxy", pattern="^(xyxy|xywh)$", description="the dataset's bbox")
    tree: bool = Field(False, description="add the accessibility tree to the prompt")

    @field_validator("dataset")
    @classmethod
    def _a_file(cls, path: str | None) -> str | None:
        if path is not None and not Path(path).is_file():
            raise ValueError(f"no such file {path!r}; give a ScreenSpot-style JSON or JSONL")
        return path


def parse(reply: str) -> dict[str, Any] | None:
    """The one well-formed action of ``reply``, or None."""
    found = ACTION.findall(reply)
    try:
        action = json.loads(found[-1]) if len(found) == 1 else None
    except json.JSONDecodeError:
        return None
    ok = isinstance(action, dict) and action.get("action_type") in TYPES
    return action if ok else None


def point(action: dict[str, Any] | None) -> list[float] | None:
    """The action's (x, y), if it has a numeric one."""
    try:
        return [float(action["x"]), float(action["y"])] if action else None
    except (KeyError, TypeError, ValueError):
        return None


def score(reply: str, gold: ActionSample) -> dict[str, float]:
    """UI-R1's reward parts for ``reply`` against ``gold``."""
    action = parse(reply)
    if action is None:
        return {"format": 0.0, "action_type": 0.0, "coordinate": 0.0}
    same = action["action_type"] == gold.action_type
    hit = same
    if same and gold.box:
        x, y = point(action) or [-1.0, -1.0]
        x1, y1, x2, y2 = gold.box
        hit = x1 <= x <= x2 and y1 <= y <= y2
    if same and gold.text:
        hit = hit and str(action.get("text", "")).strip() == gold.text
    return {"format": 1.0, "action_type": float(same), "coordinate": float(hit)}


class GUIActionEnv(AgentEnv):
    """Predict the one GUI action a screenshot and an instruction ask for (UI-R1).

    See the module docstring."""

    config_model = GUIActionConfig
    cfg: GUIActionConfig
    baselines = ACTION_BASELINES

    @classmethod
    def shows_images(cls, config: dict[str, Any]) -> bool:
        return True  # the screenshot is the task

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        cfg = self.cfg
        self.samples = (
            load_samples(cfg.dataset, cfg.box_format)
            if cfg.dataset
            else make_samples(cfg.samples, cfg.seed)
        )
        self.sample = self.samples[0]

    def task(self, options: dict[str, Any]) -> tuple[list[Message], dict[str, Any]]:
        self.sample = s = self.samples[self.task_index(len(self.samples))]
        tree = f"\nAccessibility tree:\n{s.tree}" if self.cfg.tree and s.tree else ""
        text = PROMPT.format(instruction=s.instruction, tree=tree)
        info = {"action_type": s.action_type, "box": s.box, "text": s.text}
        return [Message(role="user", content=text, images=[s.image])], info

    def on_reply(self, content: str) -> list[Message]:
        # the report draws the gold box and the click on the screenshot
        self.label(box=self.sample.box, point=point(parse(content)))
        parts = score(content, self.sample)
        for name, value in parts.items():
            self.add_reward(name, value)
        self.end(success=parts["action_type"] == 1.0 and parts["coordinate"] == 1.0)
        return []
