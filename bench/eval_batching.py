"""Batched evaluation generation vs one-at-a-time generation on the same BBH questions.

Baseline: the same `generate_texts` call with batch_size=1, one prompt after another, in the same process.
Usage: python bench/eval_batching.py [--n 32] [--batch-size 16] [--max-new-tokens 128] [--model smollm2-135m-instruct]
The last line is the speed ratio (batched over sequential).
"""

import argparse
import time

import torch

from cotdistill.config import DataConfig, StudentConfig
from cotdistill.data import load_examples
from cotdistill.generation import generate_texts
from cotdistill.models import load_student
from cotdistill.prompting import student_prompt


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    args = parser.parse_args()

    model, tokenizer = load_student(StudentConfig(model=args.model))
    model.eval()
    examples = load_examples(DataConfig(source="bbh", limit_per_task=2))[: args.n]
    prompts = [student_prompt(e) for e in examples]
    kwargs = dict(max_new_tokens=args.max_new_tokens, stop=())
    generate_texts(model, tokenizer, prompts[:2], batch_size=2, max_new_tokens=4)  # warm-up

    start = time.perf_counter()
    batched = generate_texts(model, tokenizer, prompts, batch_size=args.batch_size, **kwargs)
    t_batched = time.perf_counter() - start
    start = time.perf_counter()
    sequential = [generate_texts(model, tokenizer, [p], batch_size=1, **kwargs)[0] for p in prompts]
    t_sequential = time.perf_counter() - start

    tokens_b = sum(g[0].new_tokens for g in batched)
    tokens_s = sum(g[0].new_tokens for g in sequential)
    same = sum(b[0].text == s[0].text for b, s in zip(batched, sequential))
    device = next(model.parameters()).device
    print(f"device={device} threads={torch.get_num_threads()} prompts={len(prompts)} max_new_tokens={args.max_new_tokens}")
    print(f"batched (batch {args.batch_size}): {t_batched:.1f}s, {tokens_b / t_batched:.1f} new tokens/s")
    print(f"one at a time: {t_sequential:.1f}s, {tokens_s / t_sequential:.1f} new tokens/s")
    print(f"identical greedy outputs: {same}/{len(prompts)}")
    print(f"batched/sequential speed ratio: {t_sequential / t_batched:.2f}x")


if __name__ == "__main__":
    main()
