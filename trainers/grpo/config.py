"""``agentgym train`` configuration, validated at the edge (see ``agentgym/conf/train.yaml``).

One section per part of a run: ``env.*`` (the environment's options), ``policy.*`` (the
sampler, in eval's words), ``learner.*`` (model, optimiser, schedule, ranks), ``trainer.*``
(GRPO and the loop), ``rollout.*`` (episode limits), ``cold_start.*`` (SFT before GRPO).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from agentgym.config import (
    Choices,
    Device,
    EnvConfig,
    WithImports,
    check_model_dir,
    compose,
    validate,
)
from agentgym.errors import ConfigError, DeprecatedSpelling
from agentgym.policies.config import (
    HFConfig,
    Trainable,
    TrainableConfig,
    parse_policy,
    resolve_script,
)
from agentgym.rollout.config import RolloutConfig
from agentgym.settings import check_env, check_images, load_imports
from agentgym.trainers.config import LearnerConfig
from agentgym.trainers.grpo.advantages import ESTIMATORS, Scale
from agentgym.trainers.grpo.losses import KLEstimator, LossAgg, RatioLevel
from agentgym.vision import is_vision_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _registered(name: str) -> str:
    if name not in ESTIMATORS:
        raise ValueError(
            f"no advantage estimator {name!r}; registered: {', '.join(sorted(ESTIMATORS))} "
            "(register one with @estimator in a module named by import=)"
        )
    return name


EstimatorName = Annotated[str, AfterValidator(_registered), Choices(lambda: ESTIMATORS)]


class SFTSettings(_Strict):
    """How to fine-tune on trajectories (``agentgym sft`` and ``cold_start.*``)."""

    epochs: int = Field(3, ge=1, description="passes over the trajectories")
    batch_size: int = Field(8, ge=1, description="trajectories per optimiser step")
    lr: float = Field(1e-4, gt=0.0, description="peak learning rate (cosine schedule)")
    warmup_steps: int = Field(0, ge=0, description="optimiser steps of linear warmup")
    min_reward: float | None = Field(None, description="drop trajectories below this reward")
    micro_batch_tokens: int = Field(8192, ge=64, description="padded tokens per forward")


class GRPOConfig(_Strict):
    """GRPO and its loop (``trainer.*``)."""

    steps: int = Field(10, ge=1, description="GRPO steps (one optimiser step per minibatch)")
    tasks_per_step: int = Field(4, ge=1, description="tasks (groups) per step")
    group_size: int = Field(8, ge=2, description="episodes per task: GRPO's group")
    estimator: EstimatorName = Field(
        "grpo",
        description="the trajectory advantage: grpo (R - group mean), rloo (R - mean of the "
        "others), or one registered by @estimator in an import=",
    )
    scale_rewards: Scale = Field(
        "group", description="divide by the group's std (group), the batch's, or not (none)"
    )
    ratio: RatioLevel = Field(
        "token", description="token: PPO/GRPO's ratio; sequence: GSPO's (clip ~3e-4/4e-4)"
    )
    skip_tied_groups: bool = Field(
        False, description="leave out groups whose rewards all tie (they carry no signal)"
    )
    turn_reward_parts: list[str] = Field(
        default_factory=lambda: ["format"],
        description="reward parts and signals credited per turn (turn-level credit)",
    )
    turn_reward_weight: float = Field(
        0.0, description="weight of the turn-level credit beside the trajectory advantage"
    )
    turn_groups: Literal["auto", "turn", "intent", "state"] = Field(
        "auto",
        description="which turns a turn's credit is normalised among: turn (same task and "
        "index), intent (same intent label, ChatR1), state (same observation, GiGPO's anchor "
        "states), auto (intent where labelled, else turn)",
    )
    turn_discount: float = Field(
        0.0, ge=0.0, le=1.0, description="discount of later turns' parts in a turn's credit"
    )
    loss_agg: LossAgg = Field("token_mean", description="how token losses become the loss")
    clip_low: float = Field(0.2, ge=0.0, description="the ratio's lower clip: 1 - clip_low")
    clip_high: float = Field(0.28, ge=0.0, description="the upper clip: 1 + clip_high (DAPO)")
    dual_clip: float | None = Field(
        None, gt=1.0, description="cap a negative advantage's loss at -A x this (dual clip)"
    )
    kl_coef: float = Field(0.0, ge=0.0, description="weight of KL to the start (0: none)")
    kl_estimator: KLEstimator = Field("k3", description="k1, k2 or k3 (Schulman)")
    tis_cap: float = Field(
        2.0, gt=0.0, description="cap of the truncated importance weight learner/sampler"
    )
    overlong_max_tokens: int | None = Field(
        None, ge=1, description="DAPO's soft overlong penalty: -1 at this many sampled tokens"
    )
    overlong_buffer: int = Field(64, ge=1, description="the penalty ramps over this many")
    entropy_top_fraction: float | None = Field(
        None, gt=0.0, le=1.0, description="train only this share of highest-entropy tokens"
    )
    minibatches: int = Field(1, ge=1, description="optimiser steps per GRPO step")
    objective: Literal["grpo", "rft"] = Field(
        "grpo",
        description="grpo; or rft, the control: supervised fine-tuning on the step's own "
        "successful episodes (rejection sampling), the same episodes sampled as GRPO",
    )
    max_off_policy_steps: int = Field(
        0,
        ge=0,
        description="sample up to k steps ahead while the learner trains; a group whose "
        "oldest token is older than k versions is dropped (0: synchronous)",
    )
    save_every: int = Field(5, ge=1, description="write a checkpoint every k steps")
    keep_checkpoints: int | None = Field(
        3,
        ge=1,
        description="the newest checkpoints kept in out/checkpoints (an older one is deleted "
        "once a newer one is complete); null keeps every one",
    )
    resume: bool | None = Field(
        None,
        description="continue from out's latest checkpoint, exactly (None: if out holds a run; "
        "false: a fresh run, refused where out holds one)",
    )
    sync_probe_tol: float = Field(
        0.05, gt=0.0, description="largest mean |sampler - learner| log-prob after a sync"
    )
    eval_tasks: int = Field(0, ge=0, description="held-out tasks evaluated (0: no evaluation)")
    eval_every: int = Field(0, ge=0, description="also evaluate every k steps (0: start, end)")
    eval_temperature: float = Field(0.0, ge=0.0, description="0: greedy")
    check_tasks: int = Field(
        8,
        ge=0,
        description="before a fresh run: the env's oracle and the gym's null baselines play "
        "this many training tasks; a null baseline that earns, or an oracle that fails, stops "
        "the run (agentgym/checks.py; 0: no check)",
    )
    on_collapse: Literal["warn", "rollback"] = Field(
        "warn",
        description="on an early warning of collapse (trainers/grpo/collapse.py): say so, or "
        "restore the last checkpoint saved with no warning up and halve the learning rate",
    )
    max_rollbacks: int = Field(
        3, ge=1, description="on_collapse=rollback: rollbacks before the run stops, naming why"
    )

    @model_validator(mode="after")
    def _estimator_scale(self) -> GRPOConfig:
        """The estimator's own scale (RLOO's paper has none) unless ``scale_rewards`` is given."""
        if "scale_rewards" not in self.model_fields_set:
            self.scale_rewards = ESTIMATORS[self.estimator].scale
        return self


class ColdStartConfig(SFTSettings):
    """Supervised fine-tuning on the env's scripted ``baseline`` (or on ``data``) before GRPO
    (``cold_start.*``); off while ``episodes`` is 0 and no ``data`` is given."""

    episodes: int = Field(0, ge=0, description="oracle episodes to generate and learn from")
    baseline: str = Field("oracle", description="the env's scripted baseline that teaches")
    data: str | None = Field(None, description="trajectories to learn from instead")
    save_model: bool = Field(
        False, description="also write the model after the cold start to out/cold_start/model"
    )

    @property
    def enabled(self) -> bool:
        return self.episodes > 0 or self.data is not None


MOVED = {
    "model": "policy.model",
    "backend": "policy.name",
    "engine": "policy.engine",
    "sampling": "policy",
    "trainer.weight_sync": "policy.weight_sync",
    "trainer.advantage": "trainer.estimator",
    **{
        f"trainer.{key}": f"learner.{key}"
        for key in (
            *("lr", "weight_decay", "warmup_steps", "schedule", "grad_clip"),
            *("micro_batch_tokens", "gradient_checkpointing", "freeze_vision", "lora"),
            *("ranks", "fsdp"),
        )
    },
}
"""Train's keys of earlier releases -> where they live now. They still work, with a
``DeprecatedSpelling`` warning; 0.3 removes them."""


def respelled(key: str) -> str:
    """A dotted key in today's spelling (``trainer.lr`` -> ``learner.lr``)."""
    for old, new in MOVED.items():
        if key == old or key.startswith(old + "."):
            return new + key[len(old) :]
    return key


def _respell(tree: dict[str, Any]) -> dict[str, Any]:
    tree = {k: dict(v) if isinstance(v, dict) else v for k, v in tree.items()}
    if isinstance(tree.get("policy"), str):
        tree["policy"] = {"name": tree["policy"]}
    for old, new in MOVED.items():
        head, _, key = old.partition(".")
        section = tree if not key else tree.get(head)
        if not isinstance(section, dict) or (key or head) not in section:
            continue
        value = section.pop(key or head)
        if old == "sampling":
            if not isinstance(value, dict):
                raise ConfigError(
                    "sampling", f"expected a group of settings, got {value!r}",
                    "write policy.temperature=... (sampling.* is 0.1's spelling)",
                )  # fmt: skip
            tree.setdefault("policy", {}).update(value)
            spelled = "sampling.KEY= is spelled policy.KEY="
        else:
            where, _, name = new.partition(".")
            tree.setdefault(where, {})[name] = value
            spelled = f"{old}= is spelled {'policy' if old == 'backend' else new}="
        warnings.warn(
            f"{spelled} now (the old spelling still works in 0.2; 0.3 removes it)",
            DeprecatedSpelling,
            stacklevel=2,
        )
    return tree


class TrainConfig(_Strict, WithImports):
    """``agentgym train``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    env: EnvConfig = Field(description="the environment: env=ID, env.KEY=... its options")
    policy: Trainable = Field(
        description="the sampler (policy=vllm|hf, or a trainable backend of an import=) and "
        "its model, as agentgym eval names it"
    )
    init: str | None = Field(
        None, description="start from these weights (e.g. `agentgym sft`'s out/model)"
    )
    device: Device = Field("auto", description="where the learner runs")
    seed: int = Field(0, ge=0, description="seeds the tasks, the sampling and the learner")
    out: str = Field(
        "",
        description="the run folder (a rerun resumes from it); default: runs/train/ENV-HASH, one "
        "per configuration (the settings a resume may not change)",
    )
    learner: LearnerConfig = Field(default_factory=LearnerConfig)
    trainer: GRPOConfig = Field(default_factory=GRPOConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    cold_start: ColdStartConfig = Field(default_factory=ColdStartConfig)

    @model_validator(mode="before")
    @classmethod
    def _old_spellings(cls, tree: Any) -> Any:
        return _respell(tree) if isinstance(tree, dict) else tree

    @field_validator("policy", mode="before")
    @classmethod
    def _trainable(cls, value: Any) -> Any:
        if isinstance(value, TrainableConfig):
            return value
        tree = {"name": "vllm", **value} if isinstance(value, dict) else value
        policy = parse_policy(tree, trainable=True)
        if isinstance(policy, HFConfig) and policy.device != "auto":
            raise ConfigError(
                "policy.device",
                "is the eval sampler's; train's hf sampler shares the learner's model",
                "set device= (the learner's device) instead",
            )
        return policy

    @property
    def start(self) -> str:
        """The weights the run starts from: ``init``, else the policy's model."""
        return self.init or str(self.policy.model)


RUN_FILES = (
    "checkpoints", "trajectories", "eval", "cold_start", "metrics.jsonl", "tb", "report.html",
    "model", "policy", "config.json", "vllm.log", "vllm.logging.json",
)  # fmt: skip
"""What a training run writes in ``out``: a folder holding any of them holds a run."""


def _run_folder(cfg: TrainConfig) -> None:
    """The default ``out`` (one per configuration), and ``trainer.resume`` decided: a rerun
    goes on from the run in ``out``; a fresh one never moves or overwrites it."""
    if not cfg.out:
        from agentgym.trainers.checkpoint import run_config

        what = run_config(cfg.model_dump(mode="json"))
        digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:8]
        cfg.out = str(Path("runs", "train", f"{cfg.env.id}-{digest}"))
    held = [name for name in RUN_FILES if (Path(cfg.out) / name).exists()]
    if cfg.trainer.resume is None:
        cfg.trainer.resume = bool(held)
    elif not cfg.trainer.resume and held:
        raise ConfigError(
            "trainer.resume",
            f"is false (a fresh run) but {cfg.out} holds a run ({', '.join(held[:4])})",
            "go on from it (drop trainer.resume: a rerun resumes), or pass another out=<dir>",
        )


def load_train_config(overrides: list[str]) -> TrainConfig:
    """Compose and validate ``agentgym train``'s config before any work starts."""
    tree = compose("train", overrides, {"env": "id", "policy": "name"})
    load_imports(WithImports.model_validate(tree).imports)  # their estimators, backends first
    cfg = validate(TrainConfig, tree)
    _run_folder(cfg)
    batch = cfg.trainer.tasks_per_step * cfg.trainer.group_size
    if batch % cfg.trainer.minibatches:
        raise ConfigError(
            "trainer.minibatches",
            f"{cfg.trainer.minibatches} does not divide the {batch} episodes of a step",
            "pick a divisor",
        )
    if cfg.init is not None:
        check_model_dir("init", cfg.init)
    env_cls = check_env(cfg.env, cfg.imports)
    if cfg.cold_start.episodes > 0 and cfg.cold_start.data is None:  # the teacher exists
        resolve_script(cfg.cold_start.baseline, env_cls.baselines, "cold_start.baseline")
    model = cfg.start
    if cfg.learner.fsdp and is_vision_model(model):
        raise ConfigError(
            "learner.fsdp",
            "is true for a vision-language model: sharding its vision tower is not built",
            "drop learner.fsdp (each rank holds a replica)",
        )
    check_images(env_cls, cfg.env, cfg.policy.reads_images(model), cfg.policy.text_only(model))
    return cfg
