"""GPU training throughput and MFU: WeightedTrainer vs TRL's SFTTrainer, bf16, a random-init 0.5B Llama, packed.

Model: Qwen2.5-0.5B's shape as a Llama (24 layers, width 896, 14 heads, 2 KV heads, MLP 4,864, vocabulary
151,936, tied embeddings; ~494M parameters), random init, weights in bf16 for both trainers, full fine-tuning
with AdamW. Data: lab questions with scripted-teacher CoTs (SmolLM2 tokenizer ids, ~190 tokens each),
`--batch-size` sequences per optimizer step, padding-free (our packing collator; TRL's padding_free), the same
ids and batches for both (bench/trainer_pair.py). Each trainer runs twice, alternating; the best run counts.

Model FLOPs utilisation = model FLOPs per second / the device's peak dense bf16 FLOPs (`--peak-tflops`, or
looked up from the device name). Model FLOPs per token, the same for both trainers: 6*N for the matmul
parameters N (all parameters; an untied input embedding is a lookup and is left out) plus causal attention,
12 * layers * width * c, where c is the mean number of positions a token attends to (s(s+1)/2 per sequence of
s tokens, averaged over tokens). A trainer that skips work (ours projects only supervised positions onto the
vocabulary) gets credit for it, as MFU intends.

    python bench/gpu_throughput.py [--batch-size 128] [--steps 30] [--warmup 5] [--out results.json]
    python bench/gpu_throughput.py --smoke     # a tiny model for a few steps on CPU: checks the script end to end

Goals (issue 14): >= 40% MFU and >= 1.3x TRL's tokens/s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from trainer_pair import Settings, build, lab_sequences, run, scratch_llama

QWEN_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                num_key_value_heads=2, vocab_size=151_936)
SMOKE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, vocab_size=49_152)
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0}  # dense


def peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of a known accelerator, from its name; None when unknown."""
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in device_name.upper()), None)


def flops_per_token(shape: dict, params: int, lengths: list[int]) -> float:
    """Model FLOPs per trained token (forward and backward): 6N plus causal attention (module docstring)."""
    mean_context = sum(s * (s + 1) / 2 for s in lengths) / sum(lengths)
    return 6 * params + 12 * shape["num_hidden_layers"] * shape["hidden_size"] * mean_context


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128, help="sequences per optimizer step")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak (default: from its name)")
    parser.add_argument("--out", help="also write the numbers to this JSON file")
    parser.add_argument("--smoke", action="store_true", help="tiny model, few steps, any device (checks the script)")
    args = parser.parse_args()
    if args.smoke:
        args.batch_size, args.steps, args.warmup = 4, 3, 1
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from cotdistill.models import SMOLLM2_ALIAS, load_tokenizer

    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else "CPU"
    peak = args.peak_tflops or (peak_tflops(device) if cuda else None)
    shape = SMOKE if args.smoke else QWEN_05B
    tokenizer = load_tokenizer(SMOLLM2_ALIAS)
    sequences = lab_sequences(tokenizer, args.batch_size * args.steps)
    lengths = [len(s.prompt_ids) + len(s.target_ids) for s in sequences]
    settings = Settings(batch_size=args.batch_size, steps=args.steps, warmup=args.warmup,
                        max_length=max(lengths), packing=True, bf16=True)
    out = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    try:
        model_dir = scratch_llama(out / "model", tokenizer, **shape)
        from transformers import AutoModelForCausalLM

        probe = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
        params = sum(p.numel() for p in probe.parameters())
        if not probe.config.tie_word_embeddings:
            params -= probe.get_input_embeddings().weight.numel()
        del probe
        per_token = flops_per_token(shape, params, lengths)
        print(f"device {device}; Llama {shape['num_hidden_layers']} layers, width {shape['hidden_size']}, vocabulary "
              f"{shape['vocab_size']:,} ({params / 1e6:.0f}M matmul parameters), bf16 weights, AdamW; "
              f"{args.batch_size} sequences a step ({sum(lengths) / len(lengths):.0f} tokens on average), packed; "
              f"{args.steps} steps ({args.warmup} warm-up); {per_token / 1e9:.2f} GFLOPs per token")
        rates: dict[str, list[float]] = {"weighted": [], "trl": []}
        for _ in range(2):
            for which in rates:
                rates[which].append(run(build(which, model_dir, tokenizer, sequences, settings, out), settings))
                if cuda:
                    torch.cuda.empty_cache()
    finally:
        shutil.rmtree(out, ignore_errors=True)

    result = {"device": device, "peak_tflops": peak, "params": params, "flops_per_token": per_token,
              "batch_size": args.batch_size, "steps": args.steps, "warmup": args.warmup, "smoke": args.smoke}
    for which, name in (("weighted", "WeightedTrainer"), ("trl", "TRL SFTTrainer")):
        best = max(rates[which])
        mfu = best * per_token / (peak * 1e12) if peak else None
        result[which] = {"tokens_per_s": best, "runs": rates[which], "mfu": mfu}
        print(f"{name}: {best:,.0f} tokens/s (runs: {', '.join(f'{x:,.0f}' for x in rates[which])})"
              + (f", MFU {mfu:.1%}" if mfu is not None else ", MFU n/a (no peak known for this device)"))
    result["ratio"] = result["weighted"]["tokens_per_s"] / result["trl"]["tokens_per_s"]
    print(f"weighted/TRL tokens/s ratio: {result['ratio']:.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
