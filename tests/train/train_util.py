"""Tiny models and random weighted sequences for the training tests (CPU, seconds)."""

from __future__ import annotations

import random

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from cotdistill.records import WeightedSequence

VOCAB = 61


def tiny_llama(seed: int = 0, attn: str = "sdpa") -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         tie_word_embeddings=False, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    config._attn_implementation = attn
    return LlamaForCausalLM(config)


def random_sequences(n: int, seed: int = 0, negative: bool = True, segments: bool = True,
                     prompt_len: tuple[int, int] = (1, 7),
                     target_len: tuple[int, int] = (1, 9)) -> list[WeightedSequence]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        p = rng.randint(*prompt_len)
        t = rng.randint(*target_len)
        weights = [rng.uniform(-1.0, 2.0) if negative else rng.uniform(0.0, 2.0) for _ in range(t)]
        cut = rng.randint(0, t)
        out.append(WeightedSequence(
            id=f"s{i}", prompt_ids=[rng.randrange(3, VOCAB) for _ in range(p)],
            target_ids=[rng.randrange(3, VOCAB) for _ in range(t)], target_weights=weights,
            target_segments=[0] * cut + [1] * (t - cut) if segments else [],
            instance_weight=rng.uniform(0.5, 2.0),
        ))
    return out
