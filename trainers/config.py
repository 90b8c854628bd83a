"""``learner.*``: the model, the optimiser and the schedule, and how the learner is spread
over ranks (the one config of ``trainers/learner.py``, which GRPO and SFT both drive)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentgym.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoRAConfig(_Strict):
    """LoRA adapters (peft) instead of full fine-tuning when ``rank > 0``."""

    rank: int = Field(0, ge=0, description="adapter rank (0: full fine-tuning)")
    alpha: float = Field(16.0, description="adapter scale numerator (alpha / rank)")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on the adapters' input")
    target_modules: list[str] | str = Field(
        "all-linear", description="the modules that get adapters (peft's names)"
    )


class LearnerConfig(_Strict):
    """The learner (``learner.*``): optimiser, schedule, precision and memory, ranks."""

    lr: float = Field(1e-5, gt=0.0, description="AdamW's peak learning rate")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="what the matrix products compute in, weights and optimiser state staying "
        "float32: bf16 (autocast) or fp32; auto: bf16 on CUDA, and on a CPU with bf16 units "
        "(avx512_bf16, amx_bf16) when LoRA trains; fp32 elsewhere (a bf16 forward rounds away "
        "full fine-tuning's small steps: docs/benchmarks.md)",
    )
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW's decoupled weight decay")
    warmup_steps: int = Field(0, ge=0, description="optimiser steps of linear warmup")
    schedule: Literal["constant", "cosine"] = Field(
        "constant", description="after warmup: constant, or cosine decay to 0 at the last step"
    )
    grad_clip: float = Field(1.0, gt=0.0, description="clip the gradient's global norm to this")
    micro_batch_tokens: int = Field(
        8192, ge=64, description="padded tokens per forward (gradients accumulate over them)"
    )
    gradient_checkpointing: bool = Field(
        False, description="recompute activations in the backward (less memory, more time)"
    )
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
        description="under torchrun or with ranks > 1: shard parameters, gradients and "
        "optimiser state over the ranks (FSDP2) instead of a full replica on each",
    )

    @model_validator(mode="after")
    def _fsdp_full_weights(self) -> LearnerConfig:
        if self.fsdp and self.lora.rank > 0:
            raise ConfigError(
                "learner.fsdp",
                "is true with learner.lora.rank > 0: sharding LoRA's frozen base is not built",
                "drop learner.fsdp (each rank holds the base and its small adapters) or LoRA",
            )
        return self
