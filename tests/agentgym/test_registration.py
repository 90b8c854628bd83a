import pytest

import agentgym
from agentgym.errors import RegistrationError, UnknownEnvError


def test_builtin_example_is_registered_through_entry_points():
    ids = [s.id for s in agentgym.list_envs()]
    assert "guess_number" in ids
    assert agentgym.spec("guess_number").summary().startswith("Find a secret integer")


def test_unknown_id_says_did_you_mean():
    with pytest.raises(UnknownEnvError, match="Did you mean 'guess_number'"):
        agentgym.make("guess_numbr")


def test_make_overrides_kwargs_and_reports_bad_ones():
    assert agentgym.make("guess_number", high=5).high == 5
    with pytest.raises(RegistrationError, match="It accepts: low, high, max_turns"):
        agentgym.make("guess_number", hgh=5)


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


def test_the_config_files_restate_no_default_differently():
    """A value in conf/env/*.yaml or conf/policy/*.yaml is the pydantic model's default (the
    CLI and agentgym.make must play the same tasks: retrieval_qa's `tasks` was 200 from the
    CLI and 500 from make)."""
    import inspect
    from pathlib import Path

    import yaml

    from agentgym.config import CONF_DIR
    from agentgym.policies.config import _MODELS

    def default(field):
        value = field.default_factory() if field.default_factory else field.default
        value = value.model_dump() if hasattr(value, "model_dump") else value
        return list(value) if isinstance(value, tuple) else value

    checked = 0
    for path in sorted(Path(CONF_DIR, "env").glob("*.yaml")):
        tree = yaml.safe_load(path.read_text())
        cls = agentgym.spec(tree.pop("id")).load()
        fields = cls.config_model.model_fields if cls.config_model else {}
        params = inspect.signature(cls).parameters
        for key, value in tree.items():
            if key == "max_turns":
                want = cls.max_turns
            else:
                want = default(fields[key]) if fields else params[key].default
            if isinstance(want, dict):
                want = {k: v for k, v in want.items() if k in value}
            assert value == want, (path.name, key, value, want)
            checked += 1
    for path in sorted(Path(CONF_DIR, "policy").glob("*.yaml")):
        tree = yaml.safe_load(path.read_text())
        fields = _MODELS[tree["name"]].model_fields
        for key, value in tree.items():
            assert value == default(fields[key]), (path.name, key, value)
            checked += 1
    assert checked > 50
