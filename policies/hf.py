"""``HFPolicy``: transformers ``generate`` on CPU or GPU (development, tests, fallback)."""

from __future__ import annotations

import asyncio
from typing import Any

from agentgym._imports import require
from agentgym.policies.base import SamplingConfig, TokenPolicy
from agentgym.types import Sample


class HFPolicy(TokenPolicy):
    """Samples with a transformers causal LM; log-probs are the model's (temperature 1).

    Build one with ``HFPolicy.load(path, sampling)``; a trainer passes its own model object
    so that rollouts always see the learner's current weights (no sync needed).

    Args:
        model: A loaded causal LM.
        tokenizer: Its tokenizer, with a chat template.
        sampling: Temperature, top-p and the per-turn token cap.
    """

    def __init__(self, model: Any, tokenizer: Any, sampling: SamplingConfig) -> None:
        super().__init__(tokenizer, sampling)
        self.model = model
        self.device = next(model.parameters()).device
        self._lock = asyncio.Lock()

    @classmethod
    def load(cls, path: str, sampling: SamplingConfig, device: str = "auto") -> HFPolicy:
        """Load a model and tokenizer from a local path or hub id onto ``device``."""
        torch = require("torch", "hf")
        transformers = require("transformers", "hf")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model = transformers.AutoModelForCausalLM.from_pretrained(path).to(device).eval()
        return cls(model, transformers.AutoTokenizer.from_pretrained(path), sampling)

    async def generate(self, prompt_ids: list[int], max_tokens: int, seed: int) -> Sample:
        async with self._lock:  # one generate at a time; the model is not re-entrant
            return await asyncio.to_thread(self._generate, prompt_ids, max_tokens, seed)

    def _generate(self, prompt_ids: list[int], max_tokens: int, seed: int) -> Sample:
        torch = require("torch", "hf")
        torch.manual_seed(seed)
        self.model.eval()
        inputs = torch.tensor([prompt_ids], device=self.device)
        greedy = self.sampling.temperature <= 0
        kwargs: dict[str, Any] = (
            {}
            if greedy
            else {
                "temperature": self.sampling.temperature,
                "top_p": self.sampling.top_p,
                "top_k": 0,
            }
        )
        with torch.no_grad():
            out = self.model.generate(
                inputs,
                attention_mask=torch.ones_like(inputs),
                do_sample=not greedy,
                max_new_tokens=max_tokens,
                eos_token_id=self.renderer.eos_id,
                pad_token_id=self.renderer.tokenizer.pad_token_id,
                output_logits=True,
                return_dict_in_generate=True,
                **kwargs,
            )
        new = out.sequences[0, len(prompt_ids) :]
        logits = torch.stack(out.logits, dim=1)[0, : len(new)].float()
        logprobs = torch.log_softmax(logits, dim=-1).gather(1, new[:, None])[:, 0]
        ids = new.tolist()
        finish = "stop" if ids and ids[-1] == self.renderer.eos_id else "length"
        return Sample(
            text=self.renderer.decode(ids),
            token_ids=ids,
            logprobs=logprobs.tolist(),
            finish_reason=finish,
        )
