import pytest

import agentgym
from agentgym.errors import RegistrationError, UnknownEnvError


def test_a_builtin_environment_is_listed_once():
    """``BUILTIN`` is the one list: every package under envs/ is in it, and pyproject.toml
    does not list them again as entry points (docs/extending.md: a built-in environment)."""
    import tomllib

    from agentgym.registration import BUILTIN
    from tests.conftest import ROOT

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "agentgym.envs" not in project.get("entry-points", {})
    packages = {p.parent.name for p in (ROOT / "envs").glob("*/__init__.py")}
    assert packages == {value.split(":")[0].split(".")[2] for value in BUILTIN.values()}


def test_builtin_example_is_registered():
    ids = [s.id for s in agentgym.list_envs()]
    assert "guess_number" in ids
    assert agentgym.spec("guess_number").summary().startswith("Find a secret integer")


def test_unknown_id_says_did_you_mean():
    with pytest.raises(UnknownEnvError, match="Did you mean 'guess_number'"):
        agentgym.make("guess_numbr")


def test_make_overrides_kwargs_and_reports_bad_ones():
    from agentgym.errors import ConfigError

    assert agentgym.make("guess_number", high=5).high == 5
    with pytest.raises(ConfigError, match=r"env\.hgh.*did you mean 'high'.*max_turns"):
        agentgym.make("guess_number", hgh=5)
    with pytest.raises(ConfigError, match=r"env\.max_turns"):
        agentgym.make("guess_number", max_turns=0)


def test_invalid_ids_and_entry_points():
    with pytest.raises(RegistrationError):
        agentgym.register("a/b", "x:y")
    agentgym.register("not_an_env", "collections:OrderedDict")
    with pytest.raises(RegistrationError, match="not an AgentEnv subclass"):
        agentgym.make("not_an_env")


def test_load_module_error():
    from agentgym.registration import load_module

    with pytest.raises(RegistrationError, match="cannot import module 'no_such_mod'"):
        load_module("no_such_mod")


def test_importing_the_package_is_enough_for_gymnasium_make():
    import subprocess
    import sys

    code = (
        "import agentgym, gymnasium; "
        "print(type(gymnasium.make('agentgym/guess_number-v0').unwrapped).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "GuessNumberEnv"


def test_spec_takes_what_list_envs_returns():
    import agentgym

    for s in agentgym.list_envs():
        assert agentgym.spec(s) is s
    assert set(agentgym.registration.BUILTIN) <= {s.id for s in agentgym.list_envs()}


def test_defaults_live_in_the_config_models_only():
    """conf/*.yaml hold only what the pydantic models leave open or set differently (a
    restated default drifted: retrieval_qa's `tasks` was 200 from the CLI and 500 from
    agentgym.make); an env's keys and defaults are shown by `agentgym envs ENV`."""
    from pathlib import Path

    import yaml

    from agentgym.cli import EvalConfig
    from agentgym.config import CONF_DIR
    from agentgym.policies.config import VLLMConfig
    from agentgym.trainers.grpo.config import TrainConfig

    assert not Path(CONF_DIR, "env").exists() and not Path(CONF_DIR, "policy").exists()

    def leaves(tree, prefix=""):
        for key, value in tree.items():
            if isinstance(value, dict) and value:
                yield from leaves(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value

    for name, model in (("train", TrainConfig), ("eval", EvalConfig)):
        tree = yaml.safe_load(Path(CONF_DIR, f"{name}.yaml").read_text())
        for key, value in leaves(tree):
            node, *rest = key.split(".")
            field = model.model_fields[node]
            if not rest:
                assert field.is_required() or field.default != value, (name, key)
                continue
            section = VLLMConfig if node == "policy" else field.annotation  # train's default
            inner = section.model_fields[rest[-1]]
            assert inner.is_required() or inner.get_default(call_default_factory=True) != value, (
                name,
                key,
            )
