"""Peak training memory: WeightedTrainer's chunked loss vs TRL's SFTTrainer, with a Qwen-sized vocabulary.

Model: a random-init Llama body (default 2 layers, width 32) under a 151,936-token head (Qwen2.5's vocabulary),
tied embeddings, fp32, full fine-tuning with AdamW; the head is what costs memory: logits for one 4,096-token
sequence are 2.5 GB in fp32. Data: random token ids, every sequence exactly L tokens (32 prompt + L-32 target,
completion-only loss), identical for both trainers (bench/trainer_pair.py sets them up at equal settings; TRL's
defaults otherwise, e.g. no Liger kernel).

Method. Each (trainer, L, batch) runs in a fresh child process (this script with --child), so one run's
allocator state never leaks into the next. The child loads the model, then caps its own address space
(RLIMIT_AS) at what it has mapped now plus the room left under the cap (--cap-gb minus its resident size now),
and trains --steps optimizer steps, timed for tokens/s (with one step, the default, that step includes
first-step costs such as creating AdamW's state, for both trainers alike). A batch fits when
the steps finish under the cap; an allocation beyond it fails in the child (torch raises), which reports "does
not fit". Peak memory is the kernel's peak resident set of the child (getrusage ru_maxrss), which, unlike
tracemalloc, sees torch's allocations; it includes Python, the libraries and the model (printed as "at load").
The largest batch is found by doubling from 1 until a batch does not fit; TRL goes first, and ours stops at
twice TRL's largest batch (at least 2), which is enough to show a batch TRL cannot fit, or at --max-batch-tokens
tokens (time limits: on a busy 2-core CPU a step of this head runs at well under 100 tokens/s). Keep the cap
well under the machine's free memory: the machine is shared.

    python bench/train_memory.py [--lengths 1024 4096] [--cap-gb 6] [--max-batch-tokens 8192] [--steps 1]

The last lines give, per length, the largest batch each trainer fits and the ratio of their peaks at batch 1.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

GB = 1 << 30
PROMPT = 32
MEMORY_ERRORS = ("can't allocate memory", "out of memory", "cannot allocate memory")


def _rss_and_mapped() -> tuple[int, int]:
    """(resident bytes, mapped virtual bytes) of this process, from /proc/self/statm."""
    pages = os.sysconf("SC_PAGE_SIZE")
    size, resident = (int(x) for x in Path("/proc/self/statm").read_text().split()[:2])
    return resident * pages, size * pages


def _random_sequences(n: int, length: int, vocab: int):
    import torch

    from cotdistill.methods.encode import Encoded, weighted_sequence

    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (n, length), generator=gen).tolist()
    return [weighted_sequence(Encoded(row[:PROMPT], row[PROMPT:], []), id=str(i)) for i, row in enumerate(ids)]


def child(args: argparse.Namespace) -> dict:
    """One run; returns what the parent prints. Called in a fresh process."""
    import torch

    from cotdistill.models import SMOLLM2_ALIAS, load_tokenizer
    from trainer_pair import Settings, build, run

    torch.set_num_threads(1)
    tokenizer = load_tokenizer(SMOLLM2_ALIAS)
    settings = Settings(batch_size=args.batch, steps=args.steps, warmup=args.steps - 1, max_length=args.length)
    sequences = _random_sequences(args.batch * args.steps, args.length, args.vocab)
    out = Path(tempfile.mkdtemp(prefix="bench-mem-"))
    try:
        trainer = build(args.child, args.model_dir, tokenizer, sequences, settings, out)
        rss, mapped = _rss_and_mapped()
        room = int(args.cap_gb * GB) - rss
        if room <= 0:
            return {"fits": False, "error": f"{rss / GB:.2f} GB resident at load, over the cap"}
        resource.setrlimit(resource.RLIMIT_AS, (mapped + room, resource.RLIM_INFINITY))
        try:
            rate = run(trainer, settings)
        except (MemoryError, RuntimeError) as e:
            if isinstance(e, RuntimeError) and not any(m in str(e).lower() for m in MEMORY_ERRORS):
                raise
            resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            return {"fits": False, "error": str(e).splitlines()[0][:120], "load_gb": rss / GB}
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        return {"fits": True, "peak_gb": peak / GB, "load_gb": rss / GB, "tokens_per_s": rate}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _spawn(which: str, length: int, batch: int, model_dir: str, args: argparse.Namespace) -> dict:
    """Run one configuration in a fresh process and return its result (a dict with "fits")."""
    command = [sys.executable, __file__, "--child", which, "--length", str(length), "--batch", str(batch),
               "--model-dir", model_dir, "--cap-gb", str(args.cap_gb), "--steps", str(args.steps),
               "--vocab", str(args.vocab)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"fits": False, "error": f"child exited {done.returncode}: {tail[:160]}"}


def _show(which: str, length: int, batch: int, r: dict) -> str:
    if r["fits"]:
        return (f"{which:8s} L={length:5d} batch {batch:3d}: peak {r['peak_gb']:.2f} GB (at load "
                f"{r['load_gb']:.2f}), {r['tokens_per_s']:.0f} tokens/s")
    return f"{which:8s} L={length:5d} batch {batch:3d}: does not fit ({r['error']})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--cap-gb", type=float, default=6.0)
    parser.add_argument("--max-batch-tokens", type=int, default=8192, help="stop doubling past this many tokens")
    parser.add_argument("--steps", type=int, default=1, help="optimizer steps per run; only the last is timed")
    parser.add_argument("--vocab", type=int, default=151_936)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--child", choices=["weighted", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args)), flush=True)
        return

    from cotdistill.models import SMOLLM2_ALIAS, load_tokenizer
    from trainer_pair import scratch_llama

    folder = Path(tempfile.mkdtemp(prefix="bench-mem-model-"))
    try:
        model_dir = scratch_llama(folder, load_tokenizer(SMOLLM2_ALIAS), vocab_size=args.vocab,
                                  hidden_size=args.hidden, intermediate_size=4 * args.hidden,
                                  num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=4,
                                  max_position_embeddings=max(args.lengths))
        print(f"random-init Llama, {args.layers} layers, width {args.hidden}, vocabulary {args.vocab:,} (tied), "
              f"fp32, AdamW; cap {args.cap_gb} GB per run; {args.steps} step(s) per run, the last timed; 1 thread")
        largest: dict[tuple[str, int], int] = {}
        first_peak: dict[tuple[str, int], float] = {}
        stopped: dict[int, bool] = {}
        for length in args.lengths:
            limit = max(args.max_batch_tokens, length) // length
            for which in ("trl", "weighted"):
                if which == "weighted":  # enough to show a batch TRL cannot fit
                    limit = min(limit, max(2, 2 * largest.get(("trl", length), 0)))
                batch, failed = 1, False
                while batch <= limit and not failed:
                    result = _spawn(which, length, batch, model_dir, args)
                    print(_show(which, length, batch, result), flush=True)
                    failed = not result["fits"]
                    if not failed:
                        largest[which, length] = batch
                        first_peak.setdefault((which, length), result["peak_gb"])
                    batch *= 2
            stopped[length] = not failed  # ours never failed: its largest batch is a lower bound
        for length in args.lengths:
            ours, theirs = largest.get(("weighted", length), 0), largest.get(("trl", length), 0)
            cap_note = " or more (the bench stopped there)" if stopped[length] else ""
            line = f"L={length}: largest batch under {args.cap_gb} GB: WeightedTrainer {ours}{cap_note}, TRL {theirs}"
            if ("weighted", length) in first_peak and ("trl", length) in first_peak:
                ratio = first_peak["trl", length] / first_peak["weighted", length]
                line += f"; peak at batch 1, TRL / ours: {ratio:.2f}x"
            print(line)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
