"""``agentgym model import``: a GGUF file (written here by the gguf package from the tiny
model) round-trips into a model folder whose logits equal the source model's."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from agentgym.cli import main
from agentgym.testing import write_gguf


def test_gguf_import_round_trips(tiny_model, tmp_path):
    gguf_file = write_gguf(tiny_model, tmp_path / "tiny.gguf")
    out = tmp_path / "imported"
    assert main(["model", "import", str(gguf_file), str(out), "--dtype", "float32"]) == 0
    src = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    got = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    tok, got_tok = AutoTokenizer.from_pretrained(tiny_model), AutoTokenizer.from_pretrained(out)
    text = 'Find it. <tool_call>{"name": "search", "arguments": {"query": "x"}}</tool_call>'
    assert got_tok.encode(text) == tok.encode(text)
    assert got_tok.chat_template == tok.chat_template
    assert got_tok.eos_token == tok.eos_token
    ids = torch.tensor([tok.encode(text)])
    with torch.no_grad():
        assert torch.allclose(got(ids).logits, src(ids).logits, atol=1e-5)
    meta = json.loads((out / "agentgym_import.json").read_text())
    assert meta["source"] == "tiny.gguf" and len(meta["sha256"]) == 64
    assert not (out / "config.json").read_text().count("quantization_config")


def test_gguf_import_refuses_what_is_not_a_gguf(tmp_path, capsys):
    assert main(["model", "import", str(tmp_path / "missing.gguf"), str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf at all")
    assert main(["model", "import", str(bad), str(tmp_path / "o")]) == 2
    assert "cannot read bad.gguf" in capsys.readouterr().err


@pytest.mark.slow
def test_imported_model_trains_and_samples(tiny_model, tmp_path):
    out = tmp_path / "imported"
    main(["model", "import", str(write_gguf(tiny_model, tmp_path / "t.gguf")), str(out)])
    code = main(
        [
            "train",
            "env=digits",
            f"policy.model={out}",
            "policy=hf",
            "device=cpu",
            "trainer.steps=1",
            "trainer.group_size=2",
            "trainer.tasks_per_step=2",
            "policy.max_new_tokens=8",
            f"out={tmp_path / 'run'}",
        ]
    )
    assert code == 0
