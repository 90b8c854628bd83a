"""The environment registry: ``register``, ``make``, ``spec``, ``list_envs``.

Every registration also goes into Gymnasium's registry as ``agentgym/<id>-v0``, so both
``agentgym.make("guess_number")`` and ``gymnasium.make("agentgym/guess_number-v0")`` work.

Third-party packages register environments without being imported first, through the
entry-point group ``agentgym.envs``: the entry point's name is the id, its value the class::

    [project.entry-points."agentgym.envs"]
    my_env = "my_package.envs:MyEnv"

A user's own module that calls ``register`` can be loaded with ``load_module`` (the CLI's
``import=my_module``).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import inspect
import os
import sys
from dataclasses import dataclass, field
from typing import Any, cast

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

from agentgym.asyncenv import AsyncEnv
from agentgym.errors import RegistrationError, UnknownEnvError

NAMESPACE = "agentgym"
ENTRY_POINT_GROUP = "agentgym.envs"


@dataclass(frozen=True)
class EnvSpec:
    """How to build one environment."""

    id: str
    entry_point: str | type[AsyncEnv]
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def gym_id(self) -> str:
        return f"{NAMESPACE}/{self.id}-v0"

    def load(self) -> type[AsyncEnv]:
        """Import the environment class (an ``AgentEnv``, or another ``AsyncEnv`` such as
        ``remote``'s)."""
        creator = (
            load_env_creator(self.entry_point)
            if isinstance(self.entry_point, str)
            else self.entry_point
        )
        if not (inspect.isclass(creator) and issubclass(creator, AsyncEnv)):
            raise RegistrationError(
                f"'{self.id}': entry point {self.entry_point!r} is not an AgentEnv subclass"
            )
        return creator

    def summary(self) -> str:
        """A one-line description (imports the class if none was registered)."""
        if self.description:
            return self.description
        doc = inspect.getdoc(self.load()) or ""
        return doc.splitlines()[0] if doc else ""


_registry: dict[str, EnvSpec] = {}
_plugins_loaded = False

BUILTIN = {
    "guess_number": "agentgym.envs.guess_number:GuessNumberEnv",
    "digits": "agentgym.envs.digits:DigitsEnv",
    "deep_research": "agentgym.envs.deep_research:DeepResearchEnv",
    "retrieval_qa": "agentgym.envs.retrieval_qa:RetrievalQAEnv",
    "keychain": "agentgym.envs.keychain:KeyChainEnv",
    "swe": "agentgym.envs.swe:SWEEnv",
    "gui": "agentgym.envs.gui:GUIEnv",
    "gui_action": "agentgym.envs.gui:GUIActionEnv",
    "remote": "agentgym.envs.remote:RemoteEnv",
    "harness": "agentgym.envs.harness:HarnessEnv",
    "reasoning_gym": "agentgym.envs.reasoning_gym:ReasoningGymEnv",
    "openenv": "agentgym.envs.openenv:OpenEnvEnv",
    "harbor": "agentgym.envs.harbor:HarborEnv",
}
"""The built-in environments: the one list of them (a package under ``envs/`` each; a checkout
that is not installed has them all). Other packages' come from entry points."""


def register(
    id: str,
    entry_point: str | type[AsyncEnv],
    description: str = "",
    **kwargs: Any,
) -> EnvSpec:
    """Register an environment under ``id`` (and ``agentgym/<id>-v0`` in Gymnasium).

    Args:
        id: A short name such as ``"deep_research"``.
        entry_point: The ``AgentEnv`` subclass, or ``"module:Class"`` to import lazily.
        description: One line for ``agentgym envs``; defaults to the class docstring.
        **kwargs: Default constructor arguments; ``make`` overrides them.
    """
    if not id or "/" in id or not id.replace("_", "").replace("-", "").isalnum():
        raise RegistrationError(f"invalid environment id {id!r}: use letters, digits, '_' or '-'")
    spec = EnvSpec(id=id, entry_point=entry_point, kwargs=dict(kwargs), description=description)
    _registry[id] = spec
    gym.register(
        id=spec.gym_id,
        entry_point=cast(Any, entry_point),
        kwargs=dict(kwargs),
        max_episode_steps=None,
    )
    return spec


def _load_plugins() -> None:
    """Register the built-ins and every ``agentgym.envs`` entry point (once; ``import
    agentgym`` does it, so ``gymnasium.make("agentgym/<id>-v0")`` works right after)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    points = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    for name, value in {**BUILTIN, **points}.items():
        if name not in _registry:
            register(name, value)


def _canonical(id: str) -> str:
    """Accept ``name``, ``agentgym/name`` and ``agentgym/name-v0``."""
    if id.startswith(f"{NAMESPACE}/"):
        id = id[len(NAMESPACE) + 1 :]
        if id.endswith("-v0"):
            id = id[:-3]
    return id


def spec(id: str | EnvSpec) -> EnvSpec:
    """The ``EnvSpec`` registered under ``id`` (a name, a Gymnasium id, or an ``EnvSpec`` as
    ``list_envs`` returns them); ``UnknownEnvError`` says "did you mean"."""
    _load_plugins()
    if isinstance(id, EnvSpec):
        id = id.id
    if not isinstance(id, str):
        raise UnknownEnvError(f"an environment id is a string, got {type(id).__name__}")
    key = _canonical(id)
    if key in _registry:
        return _registry[key]
    close = difflib.get_close_matches(key, list(_registry), n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownEnvError(
        f"no environment registered as {id!r}.{hint} Registered: {', '.join(sorted(_registry))}. "
        "Register yours with agentgym.register() or an 'agentgym.envs' entry point."
    )


def make(id: str | EnvSpec, **kwargs: Any) -> AsyncEnv:
    """Build the environment registered under ``id``; ``kwargs`` (its options: the fields of
    its ``config_model``) override the registered defaults.

    Raises:
        UnknownEnvError: nothing is registered under ``id``.
        ConfigError: an option is unknown or invalid (named ``env.<key>``, with the fix).
    """
    s = spec(id)
    env = s.load()(**{**s.kwargs, **kwargs})
    env.spec = gym.spec(s.gym_id)
    return env


def list_envs() -> list[EnvSpec]:
    """Every registered environment, by id."""
    _load_plugins()
    return [_registry[k] for k in sorted(_registry)]


def load_module(name: str) -> None:
    """Import a user's module (which calls ``register``), from the current directory too
    (as ``python -m`` finds it); a clear error if it is missing."""
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise RegistrationError(
            f"cannot import module {name!r} ({exc}). Fix: make it importable (on PYTHONPATH, "
            "or installed) or pass the right dotted name."
        ) from exc
