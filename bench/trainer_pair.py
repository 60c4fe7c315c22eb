"""The two trainers the training benches compare, on the same model folder, token ids and batches.

WeightedTrainer (all weights 1) and TRL's SFTTrainer with a pre-tokenized prompt-completion dataset (input_ids +
completion_mask, completion-only loss), so both see identical batches. `run` returns tokens/s of the timed
optimizer steps (the first `warmup` steps, possibly none, are not timed), counting non-padding input tokens. Imported by
bench/train.py, bench/train_memory.py and bench/gpu_throughput.py (run from the repository root).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, TrainerCallback


@dataclass(frozen=True)
class Settings:
    batch_size: int
    steps: int
    warmup: int
    max_length: int
    packing: bool = False  # padding-free batches: our packing collator, TRL's padding_free
    bf16: bool = False  # weights in bf16 (both trainers), as a GPU run would train a small model
    chunk_size: int = 1024  # our loss: supervised positions per vocabulary-projection chunk


def _now() -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()  # kernels are asynchronous: a step ends when the device is done
    return time.perf_counter()


class Clock(TrainerCallback):
    """Wall time from the start of the first step after `warmup` steps to the end of the last step."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end = warmup, None, None

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self.start = _now()

    def on_step_end(self, args, state, control, **kwargs):
        self.end = _now()


class Counting:
    """Wraps a collator and records each batch's non-padding tokens, in order."""

    def __init__(self, collate) -> None:
        self.collate, self.tokens = collate, []

    def __call__(self, features):
        batch = self.collate(features)
        mask = batch.get("attention_mask")
        self.tokens.append(int(mask.sum()) if mask is not None else int(batch["input_ids"].numel()))
        return batch


def lab_sequences(tokenizer, n: int) -> list:
    """`n` WeightedSequences (weights 1): lab questions of three families with scripted-teacher CoTs."""
    from cotdistill.lab.generate import generate_examples
    from cotdistill.lab.teacher import ScriptedTeacher
    from cotdistill.methods.encode import encode_many, weighted_sequence
    from cotdistill.prompting import student_prompt

    examples = [e for fam in ("multistep_arithmetic_two", "navigate", "web_of_lies")
                for e in generate_examples(fam, (n + 2) // 3, seed=0)][:n]
    rationales = [r[0] for r in ScriptedTeacher().solve(examples)]
    encoded = encode_many(tokenizer, [student_prompt(e) for e in examples], [r.text for r in rationales])
    return [weighted_sequence(enc, id=e.id) for e, enc in zip(examples, encoded)]


def scratch_llama(folder: Path, tokenizer, **shape: Any) -> str:
    """Save a randomly initialised Llama (tied embeddings, seed 0) of the given shape to `folder`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**{"max_position_embeddings": 4096, "tie_word_embeddings": True, **shape},
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    return str(folder)


def _load(model_dir: str, settings: Settings):
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16 if settings.bf16 else torch.float32)


def _weighted(model_dir: str, pad_id: int, sequences, settings: Settings, out: Path):
    from cotdistill.methods.base import TrainingStage
    from cotdistill.train.collate import make_collator, sequence_features
    from cotdistill.train.trainer import TrainSettings, WeightedTrainer

    ours = TrainSettings(learning_rate=1e-5, batch_size=settings.batch_size, max_steps=settings.steps,
                         max_length=settings.max_length, packing=settings.packing, save_steps=10_000,
                         logging_steps=1000, chunk_size=settings.chunk_size)
    return WeightedTrainer(
        model=_load(model_dir, settings), args=ours.arguments(out / "weighted", TrainingStage("bench", sequences)),
        train_dataset=[sequence_features(s, max_length=settings.max_length) for s in sequences],
        data_collator=make_collator(encoder_decoder=False, packing=settings.packing, pad_token_id=pad_id),
        chunk_size=settings.chunk_size,
    )


def _trl(model_dir: str, tokenizer, sequences, settings: Settings, out: Path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    rows = [{"input_ids": s.prompt_ids + s.target_ids,
             "completion_mask": [0] * len(s.prompt_ids) + [1] * len(s.target_ids)} for s in sequences]
    # Sequences are already within max_length; TRL's padding-free mode wants max_length=None.
    config = SFTConfig(
        output_dir=str(out / "trl"), learning_rate=1e-5, per_device_train_batch_size=settings.batch_size,
        max_steps=settings.steps, max_length=None if settings.packing else settings.max_length,
        completion_only_loss=True, packing=False, padding_free=settings.packing, save_steps=10_000,
        logging_steps=1000, report_to=[], use_cpu=not torch.cuda.is_available(), seed=42, data_seed=42,
        lr_scheduler_type="linear", weight_decay=0.0, bf16=False,
    )
    return SFTTrainer(model=_load(model_dir, settings), args=config, train_dataset=Dataset.from_list(rows),
                      processing_class=tokenizer)


def build(which: str, model_dir: str, tokenizer, sequences, settings: Settings, out: Path) -> Any:
    """A ready trainer: "weighted" (ours) or "trl"."""
    if which == "weighted":
        return _weighted(model_dir, tokenizer.pad_token_id, sequences, settings, out)
    if which == "trl":
        return _trl(model_dir, tokenizer, sequences, settings, out)
    raise ValueError(f"unknown trainer {which!r}: weighted or trl")


def run(trainer: Any, settings: Settings) -> float:
    """Train and return tokens/s over the steps after the warm-up."""
    clock, counter = Clock(settings.warmup), Counting(trainer.data_collator)
    trainer.add_callback(clock)
    trainer.data_collator = counter
    trainer.train()
    return sum(counter.tokens[settings.warmup:settings.steps]) / (clock.end - clock.start)
