"""reasoning-gym's procedural datasets as an environment: ``env=reasoning_gym env.dataset=NAME``.

Each task is one item of ``reasoning_gym.create_dataset(dataset, seed=task_seed, size=tasks,
**config)``: the model reads the question and answers with the ``answer`` tool, or with a
final message (the text inside ``<answer>...</answer>`` where it writes the tags, else the
whole message); the reward is reasoning-gym's own ``score_answer`` of that answer (0 to 1),
success a full score. Seeded and offline (every dataset is generated); the held-out split is
the last ``holdout_fraction`` of the items, as for the built-in task lists.
"""

from __future__ import annotations

import difflib
import json
import re
from functools import cache
from typing import Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from agentgym._imports import require
from agentgym.env import AgentEnv, AgentEnvConfig
from agentgym.errors import ConfigError
from agentgym.tools import tool
from agentgym.types import Message

ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)
PROMPT = (
    "{question}\n\nGive your final answer with the answer tool (or end your reply with "
    "<answer>your answer</answer>)."
)


class ReasoningGymConfig(AgentEnvConfig):
    """``env.*`` keys of ``reasoning_gym``."""

    max_turns: int = Field(2, ge=1, description="assistant turns before the episode is cut")
    dataset: str = Field("chain_sum", description="the reasoning-gym dataset's name")
    config: dict[str, Any] = Field(
        default_factory=dict, description="the dataset's own options (its config's fields)"
    )
    tasks: int = Field(1000, ge=2, description="items generated (the last tenth held out)")
    task_seed: int = Field(0, description="seed of the generated items")

    @field_validator("dataset")
    @classmethod
    def _known(cls, name: str) -> str:
        names = sorted(require("reasoning_gym.factory", "reasoning-gym").DATASETS)
        if name not in names:
            close = difflib.get_close_matches(name, names, n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise ValueError(
                f"no reasoning-gym dataset {name!r}; {hint}{len(names)} are installed "
                "(reasoning_gym.factory.DATASETS names them)"
            )
        return name

    @model_validator(mode="after")
    def _builds(self) -> ReasoningGymConfig:
        items(self.dataset, json.dumps(self.config, sort_keys=True), self.tasks, self.task_seed)
        return self


@cache
def items(name: str, config: str, size: int, seed: int) -> Any:
    """The generated dataset (once per process and settings); a config the dataset refuses is
    a ``ConfigError`` naming ``env.config``."""
    rg = require("reasoning_gym", "reasoning-gym")
    try:
        return rg.create_dataset(name, seed=seed, size=size, **json.loads(config))
    except (TypeError, ValueError, AssertionError) as exc:
        raise ConfigError(
            "env.config",
            f"reasoning-gym's {name!r} refused {config}: {exc}",
            f"pass only the fields of {name}'s config class, with values it accepts",
        ) from None


class ReasoningGymEnv(AgentEnv):
    """A reasoning-gym question, answered with the answer tool; scored by its dataset."""

    config_model = ReasoningGymConfig
    cfg: ReasoningGymConfig

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        cfg = self.cfg
        self.data = items(
            cfg.dataset, json.dumps(cfg.config, sort_keys=True), cfg.tasks, cfg.task_seed
        )
        self.entry: dict[str, Any] = {}

    def task(self, options: dict[str, Any]) -> tuple[list[Message], dict[str, Any]]:
        self.entry = self.data[self.task_index(len(self.data))]
        prompt = PROMPT.format(question=self.entry["question"])
        return [Message(role="user", content=prompt)], {"answer": self.entry["answer"]}

    @tool
    def answer(self, answer: str) -> str:
        """Give your final answer; the episode ends.

        Args:
            answer: The answer alone, as the question asks for it.
        """
        self._score(answer)
        return "answer received"

    def on_reply(self, content: str) -> list[Message]:
        tagged = ANSWER.findall(content)
        self._score(tagged[-1] if tagged else content)
        return []

    def _score(self, answer: str) -> None:
        score = float(self.data.score_answer(answer.strip(), self.entry) or 0.0)
        self.add_reward("correct", score)
        self.end(success=score >= 1.0, score=score)

    @staticmethod
    def oracle(messages: list[Message], info: dict[str, Any], rng: np.random.Generator) -> str:
        """Answer with the dataset's own answer."""
        call = {"name": "answer", "arguments": {"answer": info["answer"]}}
        return f"<tool_call>{json.dumps(call)}</tool_call>"

    baselines = {"oracle": oracle}
