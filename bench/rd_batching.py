"""Rationale Difficulty scoring: batched (left padding, last-logits only) against one rationale at a time.

    OMP_NUM_THREADS=2 PYTHONPATH=src python bench/rd_batching.py [--preset lab-small] [--rationales 64]
Checks that both give the same scores, then prints the speed ratio against one-at-a-time scoring (last line).
One at a time also re-scores the question alone for every rationale, which the batched call shares per question.
"""

from __future__ import annotations

import argparse
import time

import torch

from cotdistill.lab import generate_examples
from cotdistill.lab.students import build_student
from cotdistill.lab.teacher import ScriptedTeacher
from cotdistill.select import rationale_difficulty


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="lab-small")
    p.add_argument("--rationales", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    args = p.parse_args()
    examples = generate_examples("multistep_arithmetic_two", args.rationales // 4, seed=0)
    rationales = [r for per in ScriptedTeacher(mistake_rate=0.2).solve(examples, n=4) for r in per]
    model, tokenizer = build_student(args.preset, [e.question for e in examples] + [r.text for r in rationales])
    model.eval()
    rationale_difficulty(model, tokenizer, examples, rationales[:2], batch_size=2)  # warm-up

    start = time.perf_counter()
    batched = rationale_difficulty(model, tokenizer, examples, rationales, batch_size=args.batch_size)
    t_batched = time.perf_counter() - start
    start = time.perf_counter()
    single = [rationale_difficulty(model, tokenizer, examples, [r], batch_size=1)[0] for r in rationales]
    t_single = time.perf_counter() - start

    worst = max(abs(b.nll_with - s.nll_with) for b, s in zip(batched, single))
    print(f"{args.preset}, {len(rationales)} rationales of {len(examples)} questions, threads {torch.get_num_threads()}")
    print(f"batched (batch {args.batch_size}): {t_batched:.2f}s; one at a time: {t_single:.2f}s; "
          f"largest NLL difference {worst:.1e}")
    print(f"batched/one-at-a-time speed ratio: {t_single / t_batched:.2f}x")


if __name__ == "__main__":
    main()
