"""Configuration: YAML config groups under ``agentgym/conf/`` plus Hydra-style overrides,
validated by pydantic at the edge. Every error names the key and the fix.

Overrides look like Hydra's: ``env=guess_number`` picks the group file
``conf/env/guess_number.yaml`` (or just sets the id when there is none),
``policy.temperature=0.7`` sets one value (parsed as YAML, so numbers, booleans and lists
work), ``import=my_module`` loads a module first.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from agentgym.asyncenv import AsyncEnv
from agentgym.errors import ConfigError
from agentgym.registration import spec

CONF_DIR = Path(__file__).parent / "conf"
M = TypeVar("M", bound=BaseModel)


class EnvConfig(BaseModel):
    """Which environment, and its constructor arguments (any other key)."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="the environment (agentgym envs lists them; env.KEY=: its options)")

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @functools.cached_property
    def env_class(self) -> type[AsyncEnv]:
        """The class registered as ``id``, imported once (``RegistrationError`` if none)."""
        return spec(self.id).load()


class WithImports(BaseModel):
    """``import=module`` (or a list): modules imported first, from the current directory as
    ``python -m`` would, that register environments; every rollout worker imports them too."""

    imports: list[str] = Field(
        default_factory=list,
        alias="import",
        description="modules that register environments or policies, imported first",
    )

    @field_validator("imports", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


def check_device(device: str) -> str:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; CUDA only where torch sees it."""
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):
        raise ValueError("expected auto, cpu, cuda, cuda:N or mps")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError("no CUDA device here (torch sees none); use device=cpu or auto")
    return device


Device = Annotated[str, AfterValidator(check_device)]
"""A torch device setting, checked at the edge."""

Placement = Literal["local", "ray"]
"""Where a policy's vLLM engines run: in this process, or each in a Ray actor."""


def check_model_dir(key: str, path: str) -> None:
    """A model given as a local path must be a model folder (``config.json`` inside)."""
    local = Path(path).expanduser()
    if not local.exists():
        if path.startswith((".", "/", "~")) or path.count("/") > 1:
            raise ConfigError(
                key,
                f"no such directory {path!r}",
                "pass a model folder; the tiny test model: python -m agentgym.testing DIR",
            )
        return  # a hub id (org/name), loaded where the hub is reachable
    if not (local / "config.json").is_file():
        raise ConfigError(
            key,
            f"{path!r} is not a model folder (no config.json in it)",
            "pass the folder a model was saved to (save_pretrained, `agentgym model import`, "
            "a run's out/model)",
        )


def _group_choices(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def _load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "expected a mapping", "write key: value pairs")
    return data


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(dotted, f"'{key}' is a value, not a group", f"drop '.{keys[-1]}'")
        node = child
    node[keys[-1]] = value


def compose(name: str, overrides: list[str], groups: dict[str, str]) -> dict[str, Any]:
    """The config tree: ``conf/<name>.yaml``, a recipe, group selections, then dotted overrides.

    A recipe (``recipe=NAME`` for ``conf/recipe/NAME.yaml``, or ``recipe=FILE.yaml``) is a
    saved set of overrides, as a YAML tree; the command line's own overrides win over it.

    Args:
        name: The base config file (e.g. ``"eval"``).
        overrides: ``key=value`` strings from the command line.
        groups: Group name -> field holding the selection's id when no group file exists
            (e.g. ``{"env": "id", "policy": "name"}``).
    """
    tree = _load_yaml(CONF_DIR / f"{name}.yaml")
    selections = {g: tree.pop(g) for g in groups if isinstance(tree.get(g), str)}
    parsed = [_parse_override(item, groups) for item in overrides]
    recipe = [
        kv
        for key, v in parsed
        if key == "recipe"
        for kv in flatten(_load_recipe(str(v)), ("engine",))
    ]
    values: list[tuple[str, Any]] = []
    for key, value in recipe + [kv for kv in parsed if kv[0] != "recipe"]:
        if key in groups:
            selections[key] = str(value)
        else:
            values.append((key, value))
    for group, choice in selections.items():
        path = CONF_DIR / group / f"{choice}.yaml"
        base = tree[group] if isinstance(tree.get(group), dict) else {}
        tree[group] = _load_yaml(path) if path.exists() else {**base, groups[group]: choice}
    for key, value in values:
        _set(tree, key, value)
    return tree


def _parse_override(item: str, groups: dict[str, str]) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        example = f"{next(iter(groups))}=<id>" if groups else "key=value"
        raise ConfigError(item, "expected key=value", f"write e.g. {example}")
    try:
        return key, yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(
            key, f"{raw!r} is not valid YAML ({first})", "close the brackets, or quote it"
        ) from None


def _load_recipe(name: str) -> dict[str, Any]:
    path = Path(name) if name.endswith((".yaml", ".yml")) else CONF_DIR / "recipe" / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(
            "recipe",
            f"no recipe {name!r}",
            f"use one of {_group_choices('recipe')} or a .yaml file",
        )
    return {k: _packaged(v) for k, v in _load_yaml(path).items()}


def _packaged(value: Any) -> Any:
    """A recipe's ``.cache/...`` path (the setup script's models and test model) found from
    any working directory: as given if it is there, else in ``$AGENTGYM_HOME`` or the
    checkout the package runs from."""
    if not isinstance(value, str) or not value.startswith(".cache/") or Path(value).exists():
        return value
    homes = [os.environ.get("AGENTGYM_HOME", ""), str(Path(__file__).resolve().parent.parent)]
    found = [Path(h) / value for h in homes if h and (Path(h) / value).exists()]
    return str(found[0]) if found else value


def flatten(
    tree: dict[str, Any], whole: tuple[str, ...] = (), prefix: str = ""
) -> list[tuple[str, Any]]:
    """``{"a": {"b": 1}}`` -> ``[("a.b", 1)]``; a dict under a key in ``whole`` stays one
    value (a free-form dict such as ``engine`` is set whole, not merged key by key)."""
    out: list[tuple[str, Any]] = []
    for key, value in tree.items():
        if isinstance(value, dict) and value and key not in whole:
            out += flatten(value, whole, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def validate(model: type[M], tree: dict[str, Any], prefix: str = "") -> M:
    """Build ``model`` from ``tree``; turn the first problem into a ``ConfigError``.

    Args:
        model: The pydantic model.
        tree: The values.
        prefix: Where ``tree`` sits in the whole config (for the key in the error).
    """
    try:
        return model.model_validate(tree)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join([prefix] * bool(prefix) + [str(p) for p in err["loc"]])
        if err["type"] == "extra_forbidden":
            fields = list(getattr(_model_at(model, err["loc"][:-1]), "model_fields", {}))
            close = difflib.get_close_matches(str(err["loc"][-1]), fields, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(
                key, "unknown key", f"{hint}valid keys: {', '.join(fields)}"
            ) from None
        problem = str(err["ctx"]["error"]) if err["type"] == "value_error" else err["msg"]
        problem = problem[:1].lower() + problem[1:]
        if "(got " not in problem:
            problem += f" (got {err.get('input')!r})"
        raise ConfigError(key, problem, "set a valid value") from None


def _model_at(model: Any, loc: tuple[int | str, ...]) -> Any:
    """The model that holds the key at ``loc`` (through lists, tuples and optional fields
    of models); None where it cannot be told."""
    for part in loc:
        if isinstance(part, int):
            continue  # an item of the list or tuple whose item type was taken below
        field = getattr(model, "model_fields", {}).get(str(part))
        if field is None:
            return None
        model = field.annotation
        while not hasattr(model, "model_fields") and typing.get_args(model):
            model = next((a for a in typing.get_args(model) if a is not type(None)), None)
    return model


SECRET_KEYS = {"api_key", "token", "password", "secret"}
_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://[^/:@]*):[^/@]*@", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` without the password of its ``user:password@`` part."""
    return _USERINFO.sub(r"\1:<redacted>@", url)


def redact(tree: Any) -> Any:
    """A copy of a config tree safe to write or print: secrets (``api_key``, ...) replaced,
    URL passwords removed."""
    if isinstance(tree, dict):
        return {
            k: "<redacted>"
            if k in SECRET_KEYS and tree[k] not in (None, "", "EMPTY")
            else redact(v)
            for k, v in tree.items()
        }
    if isinstance(tree, list):
        return [redact(v) for v in tree]
    return redact_url(tree) if isinstance(tree, str) else tree


@dataclass(frozen=True)
class Choices:
    """A field's allowed values where a registry holds them (``Annotated[str, Choices(f)]``,
    ``f`` returning the names at the time of asking): ``--help`` lists them."""

    names: Callable[[], Iterable[str]]


@dataclass(frozen=True)
class Alternatives:
    """A field whose model is picked at validation from a registry (``Annotated[Base,
    Alternatives(f)]``, ``f`` returning the models): ``--help`` lists each one's keys."""

    models: Callable[[], Iterable[type[BaseModel]]]


def describe(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str]]:
    """``(dotted key, default, description)`` of every field of ``model``, the fields of
    nested models flattened (a union of models: each alternative's, named by its ``name``
    where that differs): what ``--help`` and ``agentgym envs ENV`` print."""
    rows: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        picked = [m for m in field.metadata if isinstance(m, Alternatives)]
        inner = list(picked[0].models()) if picked else _models_in(field.annotation)
        if inner:
            rows += _describe_all(inner, key + ".")
            continue
        default = (
            "required"
            if field.is_required()
            else repr(field.get_default(call_default_factory=True))
        )
        text = field.description or ""
        for choices in (m for m in field.metadata if isinstance(m, Choices)):
            text += f" (one of: {', '.join(sorted(choices.names()))})"
        rows.append((key, default, text))
    return rows


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models ``annotation`` is (one, or a union's alternatives)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    args = typing.get_args(annotation)
    models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
    return models if models and len(models) == len([a for a in args if a is not type(None)]) else []


def _describe_all(models: list[type[BaseModel]], prefix: str) -> list[tuple[str, str, str]]:
    """Rows of several alternatives: a key not every one has says which have it."""
    per = [describe(m, prefix) for m in models]
    keys = [{k for k, _, _ in rows} for rows in per]
    seen: dict[str, tuple[str, str, str]] = {}
    for model, rows in zip(models, per, strict=True):
        tag = model.model_fields["name"].default if "name" in model.model_fields else model.__name__
        for key, default, text in rows:
            if key in seen:
                continue
            only = [k for k in keys if key in k]
            if len(only) < len(models) and len(models) > 1:
                text = f"({tag}) {text}".strip()
            seen[key] = (key, default, text)
    return list(seen.values())
