"""SmolLM2-135M-Instruct speed on this machine: LoRA training tokens/s and greedy generation tokens/s.

The constants `cotdistill run --dry-run` turns into a time estimate (study_plan.SPEEDS) and the sizing of
configs/bbh_study_cpu.yaml come from this script. Data: code-davinci-002's real BBH CoTs (the release's outputs
under $COTDISTILL_DATA/bbh/codex-cot) behind EDIT's student prompt, so sequence lengths are the study's. Training:
WeightedTrainer, LoRA r 64, alpha 32 on q_proj/v_proj (EDIT's shape), fp32, padded batches; tokens/s counts the
non-padding tokens of the timed steps (the first `--warmup` steps are not timed). Generation: `generate_texts`,
batched, greedy, up to `--new-tokens` (EOS may end a row sooner), counting generated tokens only.

    OMP_NUM_THREADS=1 COTDISTILL_DATA=../shared/data python bench/smollm2_speed.py [--steps 4] [--batch-size 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from train import Clock, Counting, _rate  # bench/train.py: the same step clock and token counter


def _bbh_sequences(tokenizer, n: int, data: Path):
    from cotdistill.data.bbh import load_bbh
    from cotdistill.methods.encode import encode, weighted_sequence
    from cotdistill.prompting import student_prompt
    from cotdistill.teachers.importing import read_teacher_files

    every = load_bbh(path=str(data / "bbh"))  # the release's outputs cover every split; train on the train one
    examples = [e for e in every if e.split == "train"]
    tasks = sorted({e.task for e in examples})
    by_task = {t: [e for e in examples if e.task == t] for t in tasks}
    picked = [by_task[tasks[i % len(tasks)]][i // len(tasks)] for i in range(n)]  # round-robin over tasks
    cots = {r.example_id: r.text for r in read_teacher_files([data / "bbh" / "codex-cot"], every,
                                                             "code-davinci-002").rationales}
    return [weighted_sequence(encode(tokenizer, student_prompt(e), cots[e.id]), id=e.id) for e in picked], picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="training steps, warm-up included")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--gen-batch", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    data = Path(os.environ.get("COTDISTILL_DATA", Path(__file__).parents[1] / "../shared/data"))

    from transformers import AutoModelForCausalLM

    from cotdistill.config import LoraConfig
    from cotdistill.generation import generate_texts
    from cotdistill.methods.base import TrainingStage
    from cotdistill.models import SMOLLM2_ALIAS, hf_copy_of, load_tokenizer
    from cotdistill.prompting import student_prompt
    from cotdistill.train.collate import make_collator, sequence_features
    from cotdistill.train.trainer import TrainSettings, WeightedTrainer, add_lora

    model_dir = str(hf_copy_of(SMOLLM2_ALIAS))
    tokenizer = load_tokenizer(model_dir)
    sequences, examples = _bbh_sequences(tokenizer, args.batch_size * args.steps, data)
    mean_len = sum(len(s.prompt_ids) + len(s.target_ids) for s in sequences) / len(sequences)
    print(f"{len(sequences)} BBH training sequences, {mean_len:.0f} tokens on average (prompt + codex CoT)")

    lora = LoraConfig(r=64, alpha=32, dropout=0.05, target_modules=["q_proj", "v_proj"])
    settings = TrainSettings(learning_rate=2e-4, batch_size=args.batch_size, max_steps=args.steps, max_length=1024,
                             save_steps=10_000, logging_steps=1000, lora=lora)
    out = Path(tempfile.mkdtemp(prefix="bench-smollm2-"))
    model = add_lora(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32), lora)
    trainer = WeightedTrainer(
        model=model, args=settings.arguments(out / "train", TrainingStage("bench", sequences)),
        train_dataset=[sequence_features(s, max_length=1024) for s in sequences],
        data_collator=make_collator(encoder_decoder=False, packing=False, pad_token_id=tokenizer.pad_token_id),
    )
    train_rate = _rate(trainer, Clock(args.warmup), Counting(trainer.data_collator), args.warmup, args.steps)
    print(f"LoRA training: {train_rate:.0f} tokens/s (batch {args.batch_size}, {args.steps - args.warmup} timed steps)")

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    prompts = [student_prompt(e) for e in examples[:args.gen_batch]]
    generate_texts(model, tokenizer, prompts[:2], max_new_tokens=4, batch_size=2)  # warm-up
    started = time.perf_counter()
    outputs = generate_texts(model, tokenizer, prompts, max_new_tokens=args.new_tokens, batch_size=args.gen_batch)
    seconds = time.perf_counter() - started
    generated = sum(g[0].new_tokens for g in outputs)
    print(f"greedy generation: {generated / seconds:.1f} tokens/s ({generated} tokens, batch {args.gen_batch}, "
          f"{args.new_tokens} new tokens each, {seconds:.0f} s)")


if __name__ == "__main__":
    main()
