"""``Router``: several token-level engines behind one policy (``policy.engines=N``).

A new episode goes to the engine with the fewest outstanding tokens (prompt plus turn budget of
the requests it is serving, as verl's and SkyRL's routers weigh load); every later turn of the
episode goes to the same engine, which holds the episode's prefix in its cache. A request
outside an episode (the trainer's sync probe) goes to the least loaded engine. Weights load
into every engine at once; the policy version and the weight gate are the router's, so a weight
change waits for the turns in flight on all engines.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from agentgym.policies.base import SamplingConfig, TokenPolicy
from agentgym.policy import Context
from agentgym.types import Sample


class Router(TokenPolicy):
    """Spreads episodes over ``engines`` (token policies of one model and tokenizer).

    Args:
        engines: The engines; a trainer's load its weights together (``replicas``).
    """

    def __init__(self, engines: Sequence[TokenPolicy]) -> None:
        if not engines:
            raise ValueError("a router needs at least one engine")
        super().__init__(engines[0].renderer.tokenizer, engines[0].sampling)
        self.engines = list(engines)
        self.outstanding = [0] * len(self.engines)

    def replicas(self) -> list[TokenPolicy]:
        return list(self.engines)

    def least_loaded(self) -> int:
        return min(range(len(self.engines)), key=self.outstanding.__getitem__)

    async def generate_turn(
        self, ctx: Context, max_tokens: int, seed: int, sampling: SamplingConfig
    ) -> Sample:
        if ctx.engine is None:
            ctx.engine = self.least_loaded()
        return await self._on(ctx.engine, list(ctx.token_ids), max_tokens, seed, sampling)

    async def generate(
        self,
        prompt_ids: list[int],
        max_tokens: int,
        seed: int,
        sampling: SamplingConfig | None = None,
    ) -> Sample:
        return await self._on(self.least_loaded(), prompt_ids, max_tokens, seed, sampling)

    async def _on(
        self,
        engine: int,
        prompt_ids: list[int],
        max_tokens: int,
        seed: int,
        sampling: SamplingConfig | None,
    ) -> Sample:
        cost = len(prompt_ids) + max_tokens
        self.outstanding[engine] += cost
        try:
            return await self.engines[engine].generate(prompt_ids, max_tokens, seed, sampling)
        finally:
            self.outstanding[engine] -= cost

    async def aclose(self) -> None:
        await super().aclose()
        await asyncio.gather(*(e.aclose() for e in self.engines))
