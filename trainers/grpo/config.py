"""``agentgym train`` configuration, validated at the edge (see ``agentgym/conf/train.yaml``)."""

from __future__ import annotations

import warnings
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentgym.config import Device, EnvConfig, Placement, RolloutConfig, WithImports
from agentgym.errors import ConfigError, DeprecatedSpelling
from agentgym.policies.base import SamplingConfig
from agentgym.policies.config import EngineArgs
from agentgym.trainers.grpo.advantages import Estimator, Scale
from agentgym.trainers.grpo.losses import KLEstimator, LossAgg, RatioLevel


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoRAConfig(_Strict):
    """LoRA adapters (peft) instead of full fine-tuning when ``rank > 0``."""

    rank: int = Field(0, ge=0)
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: list[str] | str = "all-linear"


class SFTSettings(_Strict):
    """How to fine-tune on trajectories (``agentgym sft`` and ``cold_start.*``)."""

    epochs: int = Field(3, ge=1)
    batch_size: int = Field(8, ge=1, description="trajectories per optimiser step")
    lr: float = Field(1e-4, gt=0.0)
    warmup_steps: int = Field(0, ge=0)
    min_reward: float | None = Field(None, description="drop trajectories below this reward")
    micro_batch_tokens: int = Field(8192, ge=64)


class GRPOConfig(_Strict):
    """The algorithm and the optimiser (``trainer.*``)."""

    steps: int = Field(10, ge=1)
    tasks_per_step: int = Field(4, ge=1)
    group_size: int = Field(8, ge=2)
    advantage: Estimator = Field(
        "grpo", description="grpo: R - group mean; rloo: R - mean of the others (see scale)"
    )
    scale_rewards: Scale = Field(
        "group", description="divide by the group's std (group), the batch's, or not (none)"
    )
    ratio: RatioLevel = Field(
        "token", description="token: PPO/GRPO's ratio; sequence: GSPO's (clip ~3e-4/4e-4)"
    )
    skip_tied_groups: bool = False
    turn_reward_parts: list[str] = Field(default_factory=lambda: ["format"])
    turn_reward_weight: float = 0.0
    turn_discount: float = Field(0.0, ge=0.0, le=1.0)
    loss_agg: LossAgg = "token_mean"
    clip_low: float = Field(0.2, ge=0.0)
    clip_high: float = Field(0.28, ge=0.0)
    dual_clip: float | None = Field(None, gt=1.0)
    kl_coef: float = Field(0.0, ge=0.0)
    kl_estimator: KLEstimator = "k3"
    tis_cap: float = Field(2.0, gt=0.0)
    overlong_max_tokens: int | None = Field(None, ge=1)
    overlong_buffer: int = Field(64, ge=1)
    entropy_top_fraction: float | None = Field(None, gt=0.0, le=1.0)
    minibatches: int = Field(1, ge=1)
    max_off_policy_steps: int = Field(
        0,
        ge=0,
        description="sample up to k steps ahead while the learner trains; a group whose "
        "oldest token is older than k versions is dropped (0: synchronous)",
    )
    lr: float = Field(1e-5, gt=0.0)
    weight_decay: float = 0.0
    warmup_steps: int = Field(0, ge=0)
    schedule: Literal["constant", "cosine"] = "constant"
    grad_clip: float = Field(1.0, gt=0.0)
    micro_batch_tokens: int = Field(8192, ge=64)
    gradient_checkpointing: bool = False
    freeze_vision: bool = Field(
        True, description="a vision-language model's vision tower stays as loaded"
    )
    lora: LoRAConfig = Field(default_factory=LoRAConfig)
    ranks: int = Field(
        1,
        ge=1,
        description="learner ranks: this process and N-1 Ray actors on rollout.ray_address's "
        "cluster (under torchrun leave it 1: torchrun starts them)",
    )
    fsdp: bool = Field(
        False,
        description="under torchrun: shard parameters, gradients and optimiser state over "
        "the ranks (FSDP2) instead of a full replica on each",
    )
    save_every: int = Field(5, ge=1)
    keep_checkpoints: int | None = Field(
        3,
        ge=1,
        description="the newest checkpoints kept in out/checkpoints (an older one is deleted "
        "once a newer one is complete); null keeps every one",
    )
    resume: bool = False
    sync_probe_tol: float = Field(0.05, gt=0.0)
    weight_sync: Literal["broadcast", "disk"] = Field(
        "broadcast",
        description="policy=vllm: weights into the engines by a gloo broadcast, or through "
        "safetensors files and reload_weights",
    )
    eval_tasks: int = Field(0, ge=0, description="held-out tasks evaluated (0: no evaluation)")
    eval_every: int = Field(0, ge=0, description="also evaluate every k steps (0: start, end)")
    eval_temperature: float = Field(0.0, ge=0.0, description="0: greedy")

    @model_validator(mode="after")
    def _rloo_unscaled(self) -> GRPOConfig:
        """RLOO as its paper has it (no std scaling) unless ``scale_rewards`` is given."""
        if self.advantage == "rloo" and "scale_rewards" not in self.model_fields_set:
            self.scale_rewards = "none"
        return self

    @model_validator(mode="after")
    def _fsdp_full_weights(self) -> GRPOConfig:
        if self.fsdp and self.lora.rank > 0:
            raise ConfigError(
                "trainer.fsdp",
                "is true with trainer.lora.rank > 0: sharding LoRA's frozen base is not built",
                "drop trainer.fsdp (each rank holds the base and its small adapters) or LoRA",
            )
        return self


class ColdStartConfig(SFTSettings):
    """Supervised fine-tuning on the env's scripted ``baseline`` (or on ``data``) before GRPO
    (``cold_start.*``); off while ``episodes`` is 0 and no ``data`` is given."""

    episodes: int = Field(0, ge=0, description="oracle episodes to generate and learn from")
    baseline: str = "oracle"
    data: str | None = Field(None, description="trajectories to learn from instead")

    @property
    def enabled(self) -> bool:
        return self.episodes > 0 or self.data is not None


class TrainPolicyConfig(SamplingConfig):
    """The policy trained (``policy.*``, in the words ``agentgym eval`` uses): its model, the
    sampler that rolls it out (``policy=vllm|hf``), that engine's arguments, how it samples."""

    name: Literal["vllm", "hf"] = "vllm"
    model: str = Field(description="a model folder (or a hub id where the hub is reachable)")
    engine: EngineArgs = Field(
        default_factory=dict, description="vLLM engine arguments (policy=vllm)"
    )
    engines: int = Field(
        1, ge=1, description="vLLM engines behind the policy; an episode stays on its engine"
    )
    placement: Placement = Field(
        "local", description="ray: each vLLM engine a Ray actor (rollout.ray_address's cluster)"
    )


OLD_SPELLINGS = {
    "model": "policy.model",
    "backend": "policy.name",
    "engine": "policy.engine",
    "sampling": "policy",
}
"""Train's keys before eval and train spoke one vocabulary -> where they live now. They still
work in 0.2, with a ``DeprecatedSpelling`` warning; 0.3 removes them."""


def respelled(key: str) -> str:
    """A dotted key in today's spelling (``sampling.top_p`` -> ``policy.top_p``)."""
    head, dot, rest = key.partition(".")
    new = OLD_SPELLINGS.get(head)
    return key if new is None else new + dot + rest


def _respell(tree: dict[str, Any]) -> dict[str, Any]:
    policy = tree.get("policy") or {}
    tree, policy = dict(tree), {"name": policy} if isinstance(policy, str) else dict(policy)
    for old in [k for k in OLD_SPELLINGS if k in tree]:
        value = tree.pop(old)
        if old == "sampling":
            if not isinstance(value, dict):
                raise ConfigError(
                    "sampling", f"expected a group of settings, got {value!r}",
                    "write policy.temperature=... (sampling.* is 0.1's spelling)",
                )  # fmt: skip
            policy.update(value)
            now = "sampling.KEY= is spelled policy.KEY="
        else:
            policy[respelled(old).removeprefix("policy.")] = value
            now = f"{old}= is spelled {'policy' if old == 'backend' else respelled(old)}="
        warnings.warn(
            f"{now} now (0.1's spelling still works in 0.2; 0.3 removes it)",
            DeprecatedSpelling,
            stacklevel=2,
        )
    if policy:
        tree["policy"] = policy
    return tree


class TrainConfig(_Strict, WithImports):
    """``agentgym train``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    env: EnvConfig
    policy: TrainPolicyConfig
    init: str | None = Field(
        None, description="start from these weights (e.g. `agentgym sft`'s out/model)"
    )
    device: Device = Field("auto", description="where the learner runs")
    seed: int = Field(0, ge=0)
    out: str = "runs/train"
    trainer: GRPOConfig = Field(default_factory=GRPOConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    cold_start: ColdStartConfig = Field(default_factory=ColdStartConfig)

    @model_validator(mode="before")
    @classmethod
    def _old_spellings(cls, tree: Any) -> Any:
        return _respell(tree) if isinstance(tree, dict) else tree
