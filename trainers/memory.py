"""The GPU memory plan printed when training starts on a GPU: what the learner's weights,
gradients, optimizer state and activations need, and the share the vLLM engine reserves.

Estimates, in bytes:

* weights: every parameter at its dtype's size (float32: the learner computes in bf16 on CUDA
  but keeps float32 weights);
* gradients: trainable parameters at that size;
* optimizer: AdamW's two moments per trainable parameter, at that size;
* activations of one micro-batch: ``tokens * hidden * layers * 34`` bytes/2 per element at
  the weights' size (the usual transformer estimate; ``* 2 / 34`` with gradient checkpointing;
  an upper bound under bf16 autocast, which keeps some activations in float32), plus the
  fp32 logits and log-softmax of the micro-batch (``tokens * vocab * 8``);
* vLLM: ``gpu_memory_utilization`` of the device (weights, activations and KV cache of the
  sampler).
"""

from __future__ import annotations

from typing import Any

GiB = 2**30


def memory_plan(
    model: Any, micro_batch_tokens: int, checkpointing: bool, vllm_share: float, total: int
) -> dict[str, float]:
    """The plan in GiB (``total``: the device's memory in bytes)."""
    params = list(model.parameters())
    size = params[0].element_size()
    n_all = sum(p.numel() for p in params)
    n_train = sum(p.numel() for p in params if p.requires_grad)
    cfg = model.config
    per_token = cfg.hidden_size * cfg.num_hidden_layers * (2 if checkpointing else 34) * size / 2
    plan = {
        "weights": n_all * size,
        "gradients": n_train * size,
        "optimizer": 2 * n_train * size,
        "activations": micro_batch_tokens * (per_token + cfg.vocab_size * 8),
        "vllm": vllm_share * total,
    }
    out = {k: v / GiB for k, v in plan.items()}
    out["total"] = sum(out.values())
    out["device"] = total / GiB
    return out
