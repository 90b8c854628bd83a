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
