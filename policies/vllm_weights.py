"""How a learner's weights reach vLLM engines: ``VLLMWeights``, which a trainable vLLM policy
(one engine, several behind a router, engines in Ray actors) owns and its ``sync_from`` calls.

``policy.weight_sync=broadcast`` (the default): every tensor goes to the engines over a gloo
group of their own, then a prefix-cache reset (its KV was computed with the old weights).
``policy.weight_sync=disk``: the learner writes safetensors into the folder the engines
loaded, then ``collective_rpc("reload_weights")`` and the prefix-cache reset.

Weights into a vLLM engine by collective broadcast instead of through files:

``WeightReceiver`` is mixed into vLLM's worker (the ``worker_extension_cls`` engine argument,
so it runs inside the engine's process) and ``WeightSender`` is the learner's end: they form a
gloo process group of their own (rank 0 the learner, one rank per engine, apart from any
``torchrun`` group), and each sync broadcasts every tensor of the policy from rank 0; the
worker hands them to the model's ``load_weights``. This is the path verl, SkyRL and TRL's vLLM
client take (with NCCL on GPUs); here the tensors travel over gloo, on the CPU.
"""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agentgym._compute import run_torch
from agentgym._imports import require
from agentgym.cluster import meeting_point

if TYPE_CHECKING:
    from agentgym.policies.base import TokenPolicy, WeightSource

RECEIVER = "agentgym.policies.vllm_weights.WeightReceiver"
TIMEOUT = datetime.timedelta(seconds=300)
Meta = list[tuple[str, list[int], str]]
"""(name, shape, dtype) of every tensor, in broadcast order."""


def _group(host: str, port: int, rank: int, world: int) -> Any:
    dist = require("torch.distributed", "train")
    store = dist.TCPStore(host, port, world, is_master=rank == 0, timeout=TIMEOUT)
    return dist.ProcessGroupGloo(store, rank, world, TIMEOUT)


def _broadcast(group: Any, tensor: Any) -> None:
    dist = require("torch.distributed", "train")
    opts = dist.BroadcastOptions()
    opts.rootRank = 0
    group.broadcast([tensor], opts).wait()


class WeightReceiver:
    """Methods vLLM adds to its worker; called by ``collective_rpc``."""

    reload_weights: Any

    def agentgym_join(self, host: str, port: int, rank: int, world: int) -> None:
        """Join the learner's weight group as ``rank``."""
        self.agentgym_group = _group(host, port, rank, world)

    def agentgym_receive(self, meta: Meta) -> None:
        """Receive every tensor of ``meta`` from rank 0 and load them into the model."""
        torch = require("torch", "train")
        weights = []
        for name, shape, dtype in meta:
            tensor = torch.empty(shape, dtype=getattr(torch, dtype))
            _broadcast(self.agentgym_group, tensor)
            weights.append((name, tensor))
        self.reload_weights(weights_iterator=iter(weights))  # the worker's in-place reload


class WeightSender:
    """The learner's end of the weight group of ``engines`` (each an ``AsyncLLM``)."""

    def __init__(self, group: Any, engines: list[Any]) -> None:
        self.group, self.engines = group, engines

    @classmethod
    async def connect(cls, engines: list[Any]) -> WeightSender:
        """Form the group: this process is rank 0, engine ``i`` rank ``i + 1``."""
        host, port = meeting_point()  # engines in Ray actors may be on other nodes
        world = len(engines) + 1
        joins = [
            asyncio.ensure_future(
                e.collective_rpc("agentgym_join", args=(host, port, i + 1, world))
            )
            for i, e in enumerate(engines)
        ]
        group = await run_torch(_group, host, port, 0, world)
        await asyncio.gather(*joins)
        return cls(group, engines)

    async def send(self, state: dict[str, Any]) -> None:
        """Broadcast ``state`` (name -> CPU tensor) into every engine's model."""
        meta: Meta = [
            (name, list(t.shape), str(t.dtype).removeprefix("torch.")) for name, t in state.items()
        ]
        loads = [
            asyncio.ensure_future(e.collective_rpc("agentgym_receive", args=(meta,)))
            for e in self.engines
        ]

        def send_all() -> None:
            for tensor in state.values():
                _broadcast(self.group, tensor.detach().cpu().contiguous())

        await run_torch(send_all)
        await asyncio.gather(*loads)

    def close(self) -> None:
        """Let go of the engines (their policy shuts them down) and of the group."""
        self.engines, self.group = [], None


class VLLMWeights:
    """The sync of a trainable vLLM policy: its engines load the learner's weights between
    their turns (the policy's weight gate), by broadcast or through ``folder``.

    Args:
        mode: ``broadcast`` or ``disk`` (see the module docstring).
        folder: The model folder the engines were started on (the learner's weights,
            rewritten at every ``disk`` sync).
    """

    def __init__(self, mode: Literal["broadcast", "disk"], folder: Path) -> None:
        self.mode, self.folder = mode, folder
        self.sender: WeightSender | None = None

    async def push(self, policy: TokenPolicy, learner: WeightSource, version: int) -> None:
        """Make every engine of ``policy`` (``policy.replicas()``) sample from ``learner``'s
        weights, as policy ``version``; turns in flight end on the old weights."""
        engines = policy.replicas()
        if self.mode == "disk":
            await run_torch(learner.weights.export, self.folder)
            async with policy.gate.changing():
                await asyncio.gather(*(e.load_weights() for e in engines))
                policy.version = version
            return
        if self.sender is None:
            self.sender = await WeightSender.connect([e.engine for e in engines])
        state, _ = await run_torch(learner.weights.policy_weights)
        async with policy.gate.changing():
            await self.sender.send(state)
            await asyncio.gather(*(e.forget_cache() for e in engines))
            policy.version = version

    def close(self) -> None:
        if self.sender is not None:
            self.sender.close()
