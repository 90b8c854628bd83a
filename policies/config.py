"""Policy configs (one pydantic model per backend, chosen by ``name``) and ``build_policy``."""

from __future__ import annotations

import ast
import difflib
import functools
import importlib
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from agentgym._imports import require
from agentgym.config import Device, Placement, check_model_dir, validate
from agentgym.errors import ConfigError
from agentgym.policies.base import SamplingConfig
from agentgym.policy import Policy


class _Sampled(SamplingConfig):
    model: str | None = Field(
        None, description="a model folder (hf, vllm) or the name a server serves (openai)"
    )

    def require_model(self, local: bool) -> str:
        if not self.model:
            raise ConfigError("policy.model", "not set", "pass policy.model=<path or name>")
        if local:
            check_model_dir("policy.model", self.model)
        return self.model


class ScriptedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["scripted"] = "scripted"
    script: str = "oracle"
    tokenizer: str | None = Field(
        None, description="write the script's turns as this model's token ids (SFT data)"
    )


class HFConfig(_Sampled):
    name: Literal["hf"] = "hf"
    device: Device = "auto"


class OpenAIConfig(_Sampled):
    name: Literal["openai"] = "openai"
    base_url: str = Field("http://localhost:8000", description="with or without /v1")
    mode: Literal["completions", "chat"] = Field(
        "completions",
        description="completions: token-in/token-out (vLLM); chat: any OpenAI-compatible server",
    )
    tokenizer: str | None = Field(None, description="completions mode; None: the model's")
    api_key: str | None = Field(None, description="None: $OPENAI_API_KEY, else 'EMPTY'")
    timeout: float = Field(120.0, gt=0)
    max_retries: int = Field(4, ge=0)
    concurrency: int = Field(64, ge=1)

    @field_validator("base_url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("expected an http(s) URL such as http://localhost:8000/v1")
        return v


def _known_engine_args(engine: dict[str, Any]) -> dict[str, Any]:
    check_engine_args("policy.engine", engine)
    return engine


EngineArgs = Annotated[dict[str, Any], AfterValidator(_known_engine_args)]
"""vLLM ``AsyncEngineArgs`` as ``policy.engine`` (eval and train), checked against vLLM's."""


class VLLMConfig(_Sampled):
    name: Literal["vllm"] = "vllm"
    engine: EngineArgs = Field(
        default_factory=dict, description="vLLM AsyncEngineArgs, e.g. {max_model_len: 4096}"
    )
    engines: int = Field(
        1, ge=1, description="engines behind one policy; an episode stays on its engine"
    )
    placement: Placement = Field(
        "local", description="ray: each engine a Ray actor (rollout.ray_address's cluster)"
    )


def check_engine_args(key: str, engine: dict[str, Any]) -> None:
    """``ConfigError`` for a key that vLLM's ``AsyncEngineArgs`` does not take, found before
    vLLM is imported (its names are read from vLLM's source, which takes milliseconds where
    importing vLLM takes seconds)."""
    known = _engine_arg_names()
    for name in engine:
        if known and name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(
                f"{key}.{name}", "vLLM's AsyncEngineArgs has no such field", f"{hint}see vllm.ai"
            )


@functools.cache
def _engine_arg_names() -> frozenset[str]:
    spec = importlib.util.find_spec("vllm")
    if spec is None or spec.origin is None:
        return frozenset()  # not installed: building the policy says which extra to install
    source = Path(spec.origin).parent / "engine" / "arg_utils.py"
    try:
        tree = ast.parse(source.read_text())
    except (OSError, SyntaxError):
        return frozenset()  # another layout: vLLM itself checks later
    return frozenset(
        st.target.id
        for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name in ("EngineArgs", "AsyncEngineArgs")
        for st in node.body
        if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name)
    )


PolicyConfig = ScriptedConfig | HFConfig | OpenAIConfig | VLLMConfig
_MODELS: dict[str, type[BaseModel]] = {
    "scripted": ScriptedConfig,
    "hf": HFConfig,
    "openai": OpenAIConfig,
    "vllm": VLLMConfig,
}


def parse_policy(tree: dict[str, Any]) -> PolicyConfig:
    """Validate the ``policy`` section of a config."""
    name = tree.get("name")
    if name not in _MODELS:
        raise ConfigError("policy", f"unknown policy {name!r}", f"use one of {', '.join(_MODELS)}")
    cfg: PolicyConfig = validate(_MODELS[name], tree, prefix="policy")  # type: ignore[assignment]
    if isinstance(cfg, HFConfig | VLLMConfig):
        cfg.require_model(local=True)
    elif isinstance(cfg, OpenAIConfig):
        cfg.require_model(local=False)
    return cfg


def resolve_script(
    script: str, baselines: dict[str, Callable[..., str]], key: str = "policy.script"
) -> Callable[..., str]:
    """A baseline of the environment by name, or ``module:function`` (``key``: the setting
    that named it, for the error)."""
    if script in baselines:
        return baselines[script]
    if ":" in script:
        module, _, attr = script.partition(":")
        try:
            fn = functools.reduce(getattr, attr.split("."), importlib.import_module(module))
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                key,
                f"cannot load {script!r} ({exc})",
                "give an importable module:function",
            ) from None
        if callable(fn):
            return fn
    raise ConfigError(
        key,
        f"unknown script {script!r}",
        f"use one of this env's baselines ({', '.join(baselines) or 'none'}) or module:function",
    )


def build_policy(
    cfg: PolicyConfig, baselines: dict[str, Callable[..., str]], log_dir: Path | None = None
) -> Policy:
    """Build the policy ``cfg`` describes (loads models, opens clients); an engine's own
    logging goes to ``log_dir`` when given."""
    if isinstance(cfg, ScriptedConfig):
        from agentgym.policies.scripted import ScriptedPolicy, ScriptedTokenPolicy

        script = resolve_script(cfg.script, baselines)
        if cfg.tokenizer is None:
            return ScriptedPolicy(script)
        from agentgym.vision import ImageInputs

        transformers = require("transformers", "hf")
        tokenizer = transformers.AutoTokenizer.from_pretrained(cfg.tokenizer)
        return ScriptedTokenPolicy(script, tokenizer, ImageInputs.load(cfg.tokenizer))
    model = cfg.require_model(local=not isinstance(cfg, OpenAIConfig))
    if isinstance(cfg, HFConfig):
        from agentgym.policies.hf import HFPolicy

        return HFPolicy.load(model, cfg.sampling(), device=cfg.device)
    if isinstance(cfg, VLLMConfig):
        from agentgym.policies.vllm import start_engines

        log = log_dir / "vllm.log" if log_dir is not None else None
        return start_engines(cfg.engines, model, cfg.sampling(), log, cfg.placement, **cfg.engine)
    from agentgym.http import Client
    from agentgym.policies.openai import OpenAIChatPolicy, OpenAIPolicy

    key = cfg.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
    client = Client(cfg.base_url, key, cfg.timeout, cfg.max_retries, cfg.concurrency)
    if cfg.mode == "chat":
        return OpenAIChatPolicy(model, client, cfg.sampling())
    return OpenAIPolicy(model, cfg.tokenizer or model, client, cfg.sampling())
