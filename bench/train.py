"""Training throughput: WeightedTrainer (all weights 1) vs TRL's SFTTrainer, same model, data and batches.

Model (default "scratch"): a from-scratch Llama (4 layers, width 256, ~16M parameters, 12.6M of them the tied
embedding) with SmolLM2's tokenizer and its 49,152-token vocabulary, so the vocabulary projection and loss weigh
as they do in a real small model; SmolLM2-135M itself (`--model smollm2`) takes tens of minutes on two busy
cores. Full fine-tuning, AdamW, fp32 on CPU. Data: lab questions (multistep arithmetic, navigate, web of lies)
with scripted-teacher CoTs, tokenized once by `methods.encode`; TRL gets the very same token ids as a pre-tokenized
prompt-completion dataset (input_ids + completion_mask, completion-only loss), so both trainers see identical batches.
Throughput counts non-padding input tokens of the timed optimizer steps (the first steps are warm-up); the two
trainers are set up in bench/trainer_pair.py.

    python bench/train.py [--model scratch|smollm2|PATH] [--steps 8] [--warmup 2] [--batch-size 4] [--packing]

The last line is the ratio WeightedTrainer tokens/s / SFTTrainer tokens/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import torch
from trainer_pair import Settings, build, lab_sequences, run, scratch_llama


def _scratch_model(tokenizer, folder: Path) -> str:
    return scratch_llama(folder, tokenizer, vocab_size=len(tokenizer), hidden_size=256, intermediate_size=688,
                         num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4)


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
    sequences = lab_sequences(tokenizer, args.examples)
    tokens = sum(len(s.prompt_ids) + len(s.target_ids) for s in sequences)
    print(f"model {args.model} ({model_dir}); {len(sequences)} sequences, "
          f"{tokens / len(sequences):.0f} tokens on average; "
          f"batch {args.batch_size}, {args.steps} steps ({args.warmup} warm-up), {args.threads} threads, "
          f"packing={args.packing}")
    try:
        # Alternate the two twice so a busy machine's slow spell does not land on one side only.
        settings = Settings(batch_size=args.batch_size, steps=args.steps, warmup=args.warmup,
                            max_length=args.max_length, packing=args.packing)
        ours, theirs = [], []
        for _ in range(2):
            ours.append(run(build("weighted", model_dir, tokenizer, sequences, settings, out), settings))
            theirs.append(run(build("trl", model_dir, tokenizer, sequences, settings, out), settings))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    a, b = max(ours), max(theirs)
    print(f"WeightedTrainer: {a:.0f} tokens/s (runs: {', '.join(f'{x:.0f}' for x in ours)})")
    print(f"TRL SFTTrainer:  {b:.0f} tokens/s (runs: {', '.join(f'{x:.0f}' for x in theirs)})")
    print(f"weighted/TRL tokens/s ratio: {a / b:.2f}")


if __name__ == "__main__":
    main()
