"""vLLM engines as Ray actors (``policy.placement=ray``): on a cluster, one per GPU.

``RayEngine`` stands in for a ``VLLMPolicy`` in this process: the chat template, the token
ids and the weight gate stay here; each turn's ``generate`` runs in an actor that owns an
in-process engine (on any node of the Ray cluster, a GPU each where the cluster has them).
Weights reach it as they reach a local engine: broadcast into its worker over the weight
group (``collective_rpc`` is forwarded to the actor's engine) or reloaded from the model folder
(a folder every node sees).
"""

from __future__ import annotations

from typing import Any

from agentgym._imports import require
from agentgym.policies.base import SamplingConfig, TokenPolicy
from agentgym.policies.vllm import vllm_env
from agentgym.types import Sample


class _EngineActor:
    """Runs inside a Ray worker process: a ``VLLMPolicy`` and its engine."""

    def __init__(self, model: str, sampling: SamplingConfig, engine_kwargs: dict[str, Any]):
        from agentgym.policies.vllm import VLLMPolicy

        self.policy = VLLMPolicy(model, sampling, None, **engine_kwargs)

    async def generate(
        self, prompt_ids: list[int], max_tokens: int, seed: int, sampling: SamplingConfig | None
    ) -> Sample:
        return await self.policy.generate(prompt_ids, max_tokens, seed, sampling)

    async def load_weights(self) -> None:
        await self.policy.load_weights()

    async def forget_cache(self) -> None:
        await self.policy.forget_cache()

    async def collective_rpc(self, method: str, args: tuple[Any, ...] = ()) -> list[Any]:
        return list(await self.policy.engine.collective_rpc(method, args=args))

    async def close(self) -> None:
        from agentgym.policies.vllm import drop_socket_folder

        await self.policy.aclose()
        drop_socket_folder()  # the actor is killed next: no exit handler runs


class _RemoteEngine:
    """What ``WeightSender`` calls on an engine (``collective_rpc``), forwarded to the actor."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    async def collective_rpc(self, method: str, args: tuple[Any, ...] = ()) -> list[Any]:
        return list(await self.actor.collective_rpc.remote(method, args))


class RayEngine(TokenPolicy):
    """One vLLM engine in a Ray actor, driven like an in-process one (``start_engines``).

    Args:
        model: Local path (on every node) or hub id of the model.
        tokenizer: Its tokenizer, loaded here (the chat template is rendered here).
        sampling: Sampling settings.
        engine_kwargs: vLLM ``AsyncEngineArgs``, as for ``VLLMPolicy``.
    """

    def __init__(
        self, model: str, tokenizer: Any, sampling: SamplingConfig, **engine_kwargs: Any
    ) -> None:
        ray = require("ray", "ray")
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        actor = ray.remote(num_cpus=0, num_gpus=gpus)(_EngineActor)
        env = {"env_vars": vllm_env()}
        self._actor = actor.options(runtime_env=env).remote(model, sampling, engine_kwargs)
        super().__init__(tokenizer, sampling)
        self.engine = _RemoteEngine(self._actor)

    async def generate(
        self,
        prompt_ids: list[int],
        max_tokens: int,
        seed: int,
        sampling: SamplingConfig | None = None,
    ) -> Sample:
        return await self._actor.generate.remote(list(prompt_ids), max_tokens, seed, sampling)

    async def load_weights(self) -> None:
        """The actor's engine reloads from its model folder (a folder every node sees)."""
        await self._actor.load_weights.remote()

    async def forget_cache(self) -> None:
        await self._actor.forget_cache.remote()

    async def aclose(self) -> None:
        await super().aclose()
        ray = require("ray", "ray")
        try:
            await self._actor.close.remote()
        finally:
            ray.kill(self._actor)


def start_ray_engines(
    n: int, model: str, sampling: SamplingConfig, engine_kwargs: dict[str, Any]
) -> list[RayEngine]:
    """``n`` engine actors, started together; returns once every engine is up."""
    ray = require("ray", "ray")
    transformers = require("transformers", "hf")
    tokenizer = transformers.AutoTokenizer.from_pretrained(model)
    engines = [RayEngine(model, tokenizer, sampling, **dict(engine_kwargs)) for _ in range(n)]
    ray.get([e._actor.forget_cache.remote() for e in engines])  # an engine's error shows here
    return engines
