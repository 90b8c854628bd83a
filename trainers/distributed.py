"""Data-parallel learning over the ranks ``torchrun`` starts (gloo on a CPU, NCCL on CUDA).

    torchrun --nproc_per_node 2 -m agentgym.cli train env=digits policy=hf ...

Rank 0 drives: it runs the whole loop (rollouts, metrics, checkpoints, the sampler's weights)
as a single process does. Every other rank holds a replica of the learner and ``follow``s:
each update rank 0 makes (GRPO or SFT) first sends the batch to the followers; every rank runs
the forward and backward of its share of the sequences (balanced by tokens) with the loss
normalised by the whole batch's totals; the gradients are summed over the ranks and every rank
takes the same optimiser step. So the replicas stay identical, and an update equals one
process's update of the whole batch (``tests/trainers/test_distributed.py``). Log-probs (the
loss's old and reference terms, the sync probe) are shared out the same way and gathered on
rank 0.

With ``learner.fsdp=true`` the ranks hold shards instead of replicas (FSDP2's ``fully_shard``:
each decoder layer a unit, the embeddings, final norm and head the root's): parameters,
gradients and optimiser state are split over the ranks and gathered layer by layer for each
forward and backward, so every rank runs as many forwards as the busiest one (idle ones on a
two-token stand-in). Gradients are reduce-scattered as sums (the loss is already normalised
by the whole batch). Full weights for a sampler or a checkpoint are gathered on rank 0
(``full_state``), which every rank joins.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from agentgym._imports import require


def world() -> tuple[int, int]:
    """(this process's rank, number of ranks), from ``torchrun``'s environment."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def init(device_type: str) -> None:
    """Join the ranks' process group (once; nothing to join for a single process)."""
    dist = require("torch.distributed", "train")
    if world()[1] > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")


def share(lengths: list[int], rank: int, size: int) -> list[int]:
    """The indices of the sequences ``rank`` trains on: longest first, each to the rank with
    the fewest tokens so far (ties to the lowest rank), so every rank computes about as much."""
    loads, mine = [0] * size, []
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        r = min(range(size), key=lambda r: (loads[r], r))
        loads[r] += lengths[i]
        if r == rank:
            mine.append(i)
    return sorted(mine)


def send(call: tuple[str, Any] | None) -> Any:
    """Rank 0: tell the followers what to run next (None: stop). Followers: wait for it."""
    dist = require("torch.distributed", "train")
    box = [call]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_sum(tensors: list[Any]) -> None:
    """Sum ``tensors`` over the ranks, in place (one flat buffer, one collective)."""
    torch = require("torch", "train")
    dist = require("torch.distributed", "train")
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()


def sum_stats(stats: dict[str, float], world: int) -> dict[str, float]:
    """``stats`` summed over the ``world`` ranks (as they are on one)."""
    if world == 1:
        return stats
    torch = require("torch", "train")
    values = torch.tensor(list(stats.values()), dtype=torch.float64)
    all_sum([values])
    return dict(zip(stats, values.tolist(), strict=True))


def announce(name: str, *args: Any) -> None:
    """Rank 0 under ``torchrun``: have the followers call ``learner.<name>(*args)`` as well (a
    dotted name reaches a part of the learner: ``weights.whole``)."""
    rank, size = world()
    if size > 1 and rank == 0:
        send((name, args))


def follow(learner: Any) -> None:
    """A follower's life: make each call rank 0 announces, until it says stop."""
    while (call := send(None)) is not None:
        name, args = call
        functools.reduce(getattr, name.split("."), learner)(*args)


def most(n: int) -> int:
    """The largest ``n`` over the ranks."""
    torch = require("torch", "train")
    dist = require("torch.distributed", "train")
    value = torch.tensor([n])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return int(value)


def gather(mine: list[int], values: list[Any], total: int) -> list[Any]:
    """Rank 0: the ``total`` values each rank computed for its indices ``mine``, in index
    order; other ranks: an empty list."""
    dist = require("torch.distributed", "train")
    rank, size = world()
    parts: list[Any] = [None] * size if rank == 0 else []
    dist.gather_object((mine, values), parts if rank == 0 else None, dst=0)
    out: list[Any] = [None] * total
    for indices, got in parts:
        for i, v in zip(indices, got, strict=True):
            out[i] = v
    return out if rank == 0 else []


def shard(model: Any) -> None:
    """FSDP2 over the ranks: each decoder layer (the model's ``_no_split_modules``) a unit of
    its own, the rest the root's; gradients summed, not averaged."""
    fsdp = require("torch.distributed.fsdp", "train")
    layers = set(getattr(model, "_no_split_modules", None) or ())
    for module in list(model.modules()):
        if type(module).__name__ in layers:
            fsdp.fully_shard(module)
    fsdp.fully_shard(model)
    for module in model.modules():
        if isinstance(module, fsdp.FSDPModule):
            module.set_gradient_divide_factor(1.0)
            module.set_force_sum_reduction_for_comms(True)  # gloo has no PREMUL_SUM


def _options(**kwargs: Any) -> Any:
    sd = require("torch.distributed.checkpoint.state_dict", "train")
    return sd.StateDictOptions(full_state_dict=True, **kwargs)


def full_state(model: Any) -> dict[str, Any]:
    """A sharded model's full state dict, on rank 0's CPU ({} on the other ranks)."""
    sd = require("torch.distributed.checkpoint.state_dict", "train")
    return dict(sd.get_model_state_dict(model, options=_options(cpu_offload=True)))


def load_full_state(model: Any, state: dict[str, Any]) -> None:
    """Load a full state dict (every rank holds it) into a sharded model."""
    sd = require("torch.distributed.checkpoint.state_dict", "train")
    sd.set_model_state_dict(model, state, options=_options())


def full_optimizer_state(model: Any, optimizer: Any) -> dict[str, Any]:
    """A sharded model's optimiser state, whole, on rank 0 ({} on the other ranks)."""
    sd = require("torch.distributed.checkpoint.state_dict", "train")
    return dict(sd.get_optimizer_state_dict(model, optimizer, options=_options(cpu_offload=True)))


def load_optimizer_state(model: Any, optimizer: Any, state: dict[str, Any]) -> None:
    sd = require("torch.distributed.checkpoint.state_dict", "train")
    sd.set_optimizer_state_dict(model, optimizer, state, options=_options())


def stop() -> None:
    """Rank 0: release the followers (at the end of a run, also a failed one)."""
    dist = require("torch.distributed", "train")
    rank, size = world()
    if size > 1 and rank == 0 and dist.is_initialized():
        send(None)
