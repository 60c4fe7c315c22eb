"""Training throughput: WeightedTrainer (all weights 1) vs TRL's SFTTrainer, same model, data and batches.

Model (default "scratch"): a from-scratch Llama (4 layers, width 256, ~16M parameters, 12.6M of them the tied
embedding) with SmolLM2's tokenizer and its 49,152-token vocabulary, so the vocabulary projection and loss weigh
as they do in a real small model; SmolLM2-135M itself (`--model smollm2`) takes tens of minutes on two busy
cores. Full fine-tuning, AdamW, fp32 on CPU. Data: lab questions (multistep arithmetic, navigate, web of lies)
with scripted-teacher CoTs, tokenized once by `methods.encode`; TRL gets the very same token ids as a pre-tokenized
prompt-completion dataset (input_ids + completion_mask, completion-only loss), so both trainers see identical batches.
Throughput counts non-padding input tokens of the timed optimizer steps (the first steps are warm-up).

    python bench/train.py [--model scratch|smollm2|PATH] [--steps 8] [--warmup 2] [--batch-size 4] [--packing]

The last line is the ratio WeightedTrainer tokens/s / SFTTrainer tokens/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, TrainerCallback


def _sequences(tokenizer, n: int):
    from cotdistill.lab.generate import generate_examples
    from cotdistill.lab.teacher import ScriptedTeacher
    from cotdistill.methods.encode import encode, weighted_sequence
    from cotdistill.prompting import student_prompt

    examples = [e for fam in ("multistep_arithmetic_two", "navigate", "web_of_lies")
                for e in generate_examples(fam, (n + 2) // 3, seed=0)][:n]
    rationales = [r[0] for r in ScriptedTeacher().solve(examples)]
    return [weighted_sequence(encode(tokenizer, student_prompt(e), r.text), id=e.id)
            for e, r in zip(examples, rationales)]


def _scratch_model(tokenizer, folder: Path) -> str:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    return str(folder)


class Clock(TrainerCallback):
    """Wall time from the end of the last warm-up step to the end of the last step."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end = warmup, None, None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


class Counting:
    """Wraps a collator and records each batch's non-padding tokens, in order."""

    def __init__(self, collate) -> None:
        self.collate, self.tokens = collate, []

    def __call__(self, features):
        batch = self.collate(features)
        mask = batch.get("attention_mask")
        self.tokens.append(int(mask.sum()) if mask is not None else int(batch["input_ids"].numel()))
        return batch


def _rate(trainer, clock: Clock, counter: Counting, warmup: int, steps: int) -> float:
    trainer.add_callback(clock)
    trainer.data_collator = counter
    trainer.train()
    tokens = sum(counter.tokens[warmup:steps])
    return tokens / (clock.end - clock.start)


def run_weighted(model_dir: str, tokenizer, sequences, args, out: Path) -> float:
    from cotdistill.train.collate import make_collator, sequence_features
    from cotdistill.train.trainer import TrainSettings, WeightedTrainer
    from cotdistill.methods.base import TrainingStage

    settings = TrainSettings(learning_rate=1e-5, batch_size=args.batch_size, max_steps=args.steps,
                             max_length=args.max_length, packing=args.packing, save_steps=10_000, logging_steps=1000)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    trainer = WeightedTrainer(
        model=model, args=settings.arguments(out / "weighted", TrainingStage("bench", sequences)),
        train_dataset=[sequence_features(s, max_length=args.max_length) for s in sequences],
        data_collator=make_collator(encoder_decoder=False, packing=args.packing, pad_token_id=tokenizer.pad_token_id),
    )
    return _rate(trainer, Clock(args.warmup), Counting(trainer.data_collator), args.warmup, args.steps)


def run_trl(model_dir: str, tokenizer, sequences, args, out: Path) -> float:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    # Sequences are already within max_length; TRL's padding-free mode wants max_length=None.
    rows = [{"input_ids": s.prompt_ids + s.target_ids,
             "completion_mask": [0] * len(s.prompt_ids) + [1] * len(s.target_ids)} for s in sequences]
    config = SFTConfig(
        output_dir=str(out / "trl"), learning_rate=1e-5, per_device_train_batch_size=args.batch_size,
        max_steps=args.steps, max_length=None if args.packing else args.max_length,
        completion_only_loss=True, packing=False,
        padding_free=args.packing, save_steps=10_000, logging_steps=1000, report_to=[], use_cpu=True, seed=42,
        data_seed=42, lr_scheduler_type="linear", weight_decay=0.0, bf16=False,
    )
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    return _rate(trainer, Clock(args.warmup), Counting(trainer.data_collator), args.warmup, args.steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="scratch", help="scratch, smollm2, or a transformers folder")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--examples", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--packing", action="store_true", help="padding-free batches for both trainers")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from cotdistill.models import SMOLLM2_ALIAS, hf_copy_of, load_tokenizer

    out = Path(tempfile.mkdtemp(prefix="bench-train-"))
    tokenizer = load_tokenizer(SMOLLM2_ALIAS if args.model in ("scratch", "smollm2") else args.model)
    if args.model == "scratch":
        model_dir = _scratch_model(tokenizer, out / "scratch")
    else:
        model_dir = str(hf_copy_of(SMOLLM2_ALIAS if args.model == "smollm2" else args.model))
    sequences = _sequences(tokenizer, args.examples)
    tokens = sum(len(s.prompt_ids) + len(s.target_ids) for s in sequences)
    print(f"model {args.model} ({model_dir}); {len(sequences)} sequences, "
          f"{tokens / len(sequences):.0f} tokens on average; "
          f"batch {args.batch_size}, {args.steps} steps ({args.warmup} warm-up), {args.threads} threads, "
          f"packing={args.packing}")
    try:
        # Alternate the two twice so a busy machine's slow spell does not land on one side only.
        ours, theirs = [], []
        for _ in range(2):
            ours.append(run_weighted(model_dir, tokenizer, sequences, args, out))
            theirs.append(run_trl(model_dir, tokenizer, sequences, args, out))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    a, b = max(ours), max(theirs)
    print(f"WeightedTrainer: {a:.0f} tokens/s (runs: {', '.join(f'{x:.0f}' for x in ours)})")
    print(f"TRL SFTTrainer:  {b:.0f} tokens/s (runs: {', '.join(f'{x:.0f}' for x in theirs)})")
    print(f"weighted/TRL tokens/s ratio: {a / b:.2f}")


if __name__ == "__main__":
    main()
