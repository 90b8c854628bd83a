"""Each command's configuration, composed from ``agentgym/conf`` and the command line and
checked before any work starts (``agentgym eval``, ``train``, ``serve env``): a bad key fails
here with its name and the fix, not mid-run."""

from __future__ import annotations

import difflib
import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from agentgym.asyncenv import AsyncEnv
from agentgym.config import EnvConfig, WithImports, compose, validate
from agentgym.errors import ConfigError, RegistrationError
from agentgym.policies.config import AnyPolicy, ScriptedConfig, resolve_script
from agentgym.registration import load_module
from agentgym.rollout.config import RolloutConfig


class EvalConfig(WithImports):
    """``agentgym eval``: see ``agentgym/conf/eval.yaml``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    env: EnvConfig = Field(description="the environment: env=ID, env.KEY=... its options")
    policy: AnyPolicy = Field(description="the policy: policy=NAME, policy.KEY=...")
    episodes: int = Field(8, ge=1, description="episodes in all (tasks x group_size)")
    group_size: int = Field(1, ge=1, description="samples per task (pass@k up to it)")
    seed: int = Field(0, ge=0, description="the first task's seed (tasks seed, seed+1, ...)")
    out: str = Field(
        "",
        description="the run folder (a rerun resumes from it); default: runs/eval/ENV-POLICY-"
        "HASH, one per configuration, so other commands never meet an earlier run's folder",
    )
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)

    @model_validator(mode="after")
    def _own_folder(self) -> EvalConfig:
        if not self.out:
            what = self.model_dump(mode="json", by_alias=True, exclude={"out", "rollout"})
            digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:8]
            name = self.policy.name
            self.out = str(Path("runs", "eval", f"{self.env.id}-{name}-{digest}"))
        return self


def load_imports(modules: list[str]) -> None:
    for module in modules:
        try:
            load_module(module)
        except RegistrationError as exc:
            raise ConfigError("import", str(exc), "name an importable module") from None


def load_eval_config(overrides: list[str]) -> EvalConfig:
    """Compose and validate; check everything that can be checked before work starts."""
    tree = compose("eval", overrides, {"env": "id", "policy": "name"})
    load_imports(WithImports.model_validate(tree).imports)  # their backends, envs first
    cfg = validate(EvalConfig, tree)
    if cfg.episodes % cfg.group_size:
        raise ConfigError(
            "episodes",
            f"{cfg.episodes} is not a multiple of group_size {cfg.group_size}",
            "make episodes = tasks x group_size",
        )
    env_cls = check_env(cfg.env, cfg.imports)
    policy = cfg.policy
    if isinstance(policy, ScriptedConfig):
        resolve_script(policy.script, env_cls.baselines)
    model = str(getattr(policy, "model", "") or "")
    check_images(env_cls, cfg.env, policy.reads_images(model), policy.text_only(model))
    return cfg


def check_images(env_cls: type[AsyncEnv], env: EnvConfig, sees_images: bool, why: str) -> None:
    """A text-only policy given an env that shows images fails here, not mid-episode
    (``why``: the policy's reason)."""
    if not sees_images and env_cls.shows_images(env.kwargs):
        raise ConfigError(
            "policy",
            f"'{env.id}' shows the model images and {why}",
            "use policy=hf (or policy=openai policy.mode=chat) with a vision-language model "
            "(or, for gui, env.observation=tree: the model reads the page's tree)",
        )


def check_env_kwargs(env_cls: type[AsyncEnv], env_id: str, kwargs: dict[str, Any]) -> None:
    """``env.*`` keys against the env's ``config_model`` (and any named argument its own
    ``__init__`` takes besides)."""
    own = [
        p.name
        for p in inspect.signature(env_cls).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    model = env_cls.config_model
    if model is not None:
        validate(model, {k: v for k, v in kwargs.items() if k not in own}, prefix="env")
        return
    for key in kwargs:
        if key not in own:
            close = difflib.get_close_matches(key, own, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(
                f"env.{key}",
                f"'{env_id}' takes no such argument",
                f"{hint}it accepts: {', '.join(own)}",
            )


class CheckConfig(WithImports):
    """``agentgym check``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    env: EnvConfig = Field(description="the environment: env=ID, env.KEY=... its options")
    tasks: int = Field(8, ge=1, description="training tasks each baseline plays")
    seed: int = Field(0, ge=0, description="the first task's seed")


def load_check_config(overrides: list[str]) -> CheckConfig:
    """``agentgym check``'s config, its env options checked."""
    cfg = validate(CheckConfig, compose("check", overrides, {"env": "id"}))
    check_env(cfg.env, cfg.imports)
    return cfg


class ServePolicyConfig(WithImports):
    """``agentgym serve policy``: a policy behind the OpenAI-compatible gateway."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    policy: AnyPolicy = Field(description="the policy, as eval names it: policy=NAME ...")
    host: str = Field("127.0.0.1", description="the address to listen on")
    port: int = Field(8000, ge=0, le=65535, description="the port to listen on (0: any free)")


class ServeEnvConfig(WithImports):
    """``agentgym serve env``."""

    model_config = ConfigDict(extra="forbid")
    env: EnvConfig = Field(description="the environment served: env=ID, env.KEY=...")
    host: str = Field("127.0.0.1", description="the address to listen on")
    port: int = Field(8000, ge=0, le=65535, description="the port to listen on (0: any free)")


def load_serve_env_config(overrides: list[str]) -> ServeEnvConfig:
    """``agentgym serve env``'s config, its env options checked."""
    cfg = validate(ServeEnvConfig, compose("serve_env", overrides, {"env": "id"}))
    check_env(cfg.env, cfg.imports)
    return cfg


def check_env(env: EnvConfig, imports: list[str]) -> type[AsyncEnv]:
    """Import ``imports``, find the env class of ``env.id`` and check ``env``'s options."""
    load_imports(imports)
    try:  # checked, not built: the command builds the envs (browsers, containers) itself
        env_cls = env.env_class
    except RegistrationError as exc:
        raise ConfigError("env", str(exc), "see `agentgym envs`") from None
    check_env_kwargs(env_cls, env.id, env.kwargs)
    env_cls.preflight(env.kwargs)
    return env_cls
