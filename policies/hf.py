"""``HFPolicy``: transformers ``generate`` on CPU or GPU (development, tests, fallback)."""

from __future__ import annotations

import asyncio
from typing import Any

from agentgym._imports import require
from agentgym.policies.base import SamplingConfig, TokenPolicy
from agentgym.types import Sample


class HFPolicy(TokenPolicy):
    """Samples with a transformers causal LM; log-probs are the model's (temperature 1).

    Args:
        model: A local path or hub id of a causal LM with a chat template.
        sampling: Temperature, top-p and the per-turn token cap.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when present).
    """

    def __init__(self, model: str, sampling: SamplingConfig, device: str = "auto") -> None:
        torch = require("torch", "hf")
        transformers = require("transformers", "hf")
        tokenizer = transformers.AutoTokenizer.from_pretrained(model)
        super().__init__(tokenizer, sampling)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.model = transformers.AutoModelForCausalLM.from_pretrained(model).to(device).eval()
        self._lock = asyncio.Lock()

    async def generate(self, prompt_ids: list[int], max_tokens: int, seed: int) -> Sample:
        async with self._lock:  # one generate at a time; the model is not re-entrant
            return await asyncio.to_thread(self._generate, prompt_ids, max_tokens, seed)

    def _generate(self, prompt_ids: list[int], max_tokens: int, seed: int) -> Sample:
        torch = require("torch", "hf")
        torch.manual_seed(seed)
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
