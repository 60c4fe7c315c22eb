"""Key-token alignment at EDIT's scale: ours (batched tokenisation + rapidfuzz, both directions) vs a pure-Python DP.

Pairs: `--pairs` (default 5,207, the size of EDIT's dual set) lab dual pairs, built from the scripted teacher's
(correct, corrupted) CoTs of every family: each pair joins several of them in a shuffled order (a fresh order on
every pass over them) until both sides have `--tokens` (default 300) SmolLM2 tokens, then is cut there, so every
pair is distinct (checked) and ~300 tokens a side.
Ours, end to end: `align.key_token_weights_many` on the texts as EDIT's stage 2 calls it, i.e. tokenising every
text (no character offsets: each distinct word once, see methods/encode.py), aligning each pair in both
directions and weighting, in one process (the goal is for 2 cores; one is enough). Beside it: the same with
Python's cyclic garbage collector left running (the library pauses it while it builds the id lists),
tokenisation alone, and the whole texts through the tokenizer's Rust batch path (`encode_batch_fast`, no
offsets), the floor of tokenising without the word-by-word cut.
Baseline: `levenshtein_dp` below on the already tokenised ids (tokenisation not counted for it): a full
(n+1)x(m+1) table and a backtrace that prefers delete, then insert, then the diagonal, as EDIT's script does.
The DP takes ~40 ms a pair, so it runs on a sample of `--sample` pairs of the same length and its time is
extrapolated per pair; the ratio printed last is per pair (DP ms/pair / ours ms/pair, both the fastest of
`--rounds`). The same sample also runs through `key_token_weights` one pair per call, the way a loop over pairs
would, and its key tokens must equal the batched ones exactly; the DP must agree with rapidfuzz on every edit
distance.
Times: fastest and median wall of `--rounds` runs, fastest CPU (the machine is shared: a busy machine stretches
wall time, and CPU time less); the load average is printed before and after.
Usage: python bench/align.py [--pairs 5207] [--tokens 300] [--sample 60] [--rounds 5] [--model smollm2-135m-instruct]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any


def levenshtein_dp(a: Sequence[int], b: Sequence[int]) -> tuple[int, list[bool], list[bool]]:
    """Unit-cost edit distance with a backtrace; returns (distance, key mask of a, key mask of b).

    The straightforward reference: every cell of the table in Python lists. Ties in the backtrace go to
    delete (a's token unmatched), then insert (b's token unmatched), then the diagonal (match or replace).
    """
    n, m = len(a), len(b)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        table[i][0] = i
    for j in range(m + 1):
        table[0][j] = j
    for i in range(1, n + 1):
        row, prev, ai = table[i], table[i - 1], a[i - 1]
        for j in range(1, m + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ai != b[j - 1]))
    mask_a, mask_b = [False] * n, [False] * m
    i, j = n, m
    while i or j:
        here = table[i][j]
        if i and here == table[i - 1][j] + 1:
            i -= 1
            mask_a[i] = True
        elif j and here == table[i][j - 1] + 1:
            j -= 1
            mask_b[j] = True
        else:
            i, j = i - 1, j - 1
            if a[i] != b[j]:
                mask_a[i] = mask_b[j] = True
    return table[n][m], mask_a, mask_b


def lab_pair_texts(count: int, tokens: int, tokenizer) -> list[tuple[str, str]]:
    """`count` distinct (correct, wrong) text pairs of `tokens` tokens a side, joined from lab dual pairs."""
    from cotdistill.lab import ScriptedTeacher
    from cotdistill.lab.families import FAMILIES
    from cotdistill.lab.generate import generate_examples

    teacher = ScriptedTeacher(seed=0)
    per_family = max(8, count // len(FAMILIES) // 2)  # each source serves several pairs, in different company
    sources: list[tuple[str, str]] = []
    for family in sorted(FAMILIES):
        examples = generate_examples(family, per_family, seed=7)
        items = [(e, r[0]) for e, r in zip(examples, teacher.solve(examples))]
        sources += [(right.text, bad.text) for (_, right), bad in zip(items, teacher.corrupt(items))]
    lengths = [(len(g), len(b)) for g, b in zip(*(tokenizer(list(side), add_special_tokens=False).input_ids
                                                 for side in zip(*sources)))]
    rng, order = random.Random(0), []
    joined = []
    for _ in range(count):
        good, bad, n_good, n_bad = [], [], 0, 0
        while min(n_good, n_bad) < tokens + 16:  # a margin: joining can merge a few tokens at the seams
            if not order:  # a fresh order for every pass over the sources, so no run of pairs repeats
                order = list(range(len(sources)))
                rng.shuffle(order)
            s = order.pop()
            good.append(sources[s][0])
            bad.append(sources[s][1])
            n_good, n_bad = n_good + lengths[s][0], n_bad + lengths[s][1]
        joined.append((" ".join(good), " ".join(bad)))
    flat = [text for pair in joined for text in pair]
    offsets = tokenizer(flat, add_special_tokens=False, return_offsets_mapping=True).offset_mapping
    cut = [text[: spans[tokens - 1][1]] for text, spans in zip(flat, offsets)]
    return list(zip(cut[::2], cut[1::2]))


def collector_running(tokenizer, texts: list[tuple[str, str]]) -> Any:
    """key_token_weights_many without its garbage-collector pause (nor encode_many's): what the pause saves."""
    import cotdistill.align as align

    paused = align.encode_many
    align.encode_many = paused.__wrapped__
    try:
        return align.key_token_weights_many.__wrapped__(tokenizer, texts)
    finally:
        align.encode_many = paused


def timed(rounds: int, work: Callable[[], Any]) -> tuple[float, float, float, Any]:
    """(fastest wall seconds, median wall seconds, fastest CPU seconds of this process, result) over `rounds`
    runs of `work`."""
    walls, cpu, result = [], float("inf"), None
    for _ in range(rounds):
        w, c = time.perf_counter(), time.process_time()
        result = work()
        walls.append(time.perf_counter() - w)
        cpu = min(cpu, time.process_time() - c)
    return min(walls), statistics.median(walls), cpu, result


def main() -> None:
    from rapidfuzz.distance import Levenshtein

    from cotdistill.align import key_token_mask, key_token_weights, key_token_weights_many
    from cotdistill.methods.encode import encode_many
    from cotdistill.models import load_tokenizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5207)
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--sample", type=int, default=60, help="pairs for the DP and the one-pair-per-call path")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    tokenizer = load_tokenizer(args.model)
    texts = lab_pair_texts(args.pairs, args.tokens, tokenizer)
    n = len(texts)
    assert len(set(texts)) == n, "the bench's pairs must be distinct (no text is tokenized once for many pairs)"
    key_token_weights_many(tokenizer, texts[:50])  # warm-up (the tokenizer's word cache, rapidfuzz's import)
    load_before = os.getloadavg()

    wall, median, cpu, ours = timed(args.rounds, lambda: key_token_weights_many(tokenizer, texts))
    gc_wall, gc_median, _, _ = timed(args.rounds, lambda: collector_running(tokenizer, texts))
    flat = [t for pair in texts for t in pair]
    tok_wall, _, tok_cpu, _ = timed(args.rounds, lambda: encode_many(tokenizer, [""] * len(flat), flat, offsets=False))
    rust = tokenizer.backend_tokenizer
    rust_wall, _, rust_cpu, _ = timed(args.rounds, lambda: [e.ids for e in rust.encode_batch_fast(
        [" " + t for t in flat], add_special_tokens=False)])
    ids = [(k.correct.target_ids, k.wrong.target_ids) for k in ours]
    align_wall, _, align_cpu, _ = timed(args.rounds, lambda: [key_token_mask(a, b) for a, b in ids])

    sample = list(range(0, n, max(1, n // args.sample)))[: args.sample]
    one_wall, _, _, one_by_one = timed(args.rounds, lambda: [key_token_weights(tokenizer, *texts[i]) for i in sample])
    dp_wall, _, dp_cpu, reference = timed(args.rounds, lambda: [levenshtein_dp(*ids[i]) for i in sample])
    load_after = os.getloadavg()

    for i, single in zip(sample, one_by_one):
        assert single == ours[i], f"pair {i}: one pair per call and batched disagree"
    for i, (dist, _, _) in zip(sample, reference):
        assert Levenshtein.distance(*ids[i]) == dist, f"pair {i}: rapidfuzz and the DP disagree on an edit distance"
    sides = [(ours[i].correct_key + ours[i].wrong_key, ma + mb) for i, (_, ma, mb) in zip(sample, reference)]
    agree = sum(x == y for a, b in sides for x, y in zip(a, b)) / sum(len(a) for a, _ in sides)
    share = sum(sum(k.correct_key) + sum(k.wrong_key) for k in ours) / sum(len(a) + len(b) for a, b in ids)

    per_pair, dp_per_pair = wall / n, dp_wall / len(sample)
    tokens = sum(len(a) + len(b) for a, b in ids)
    print(f"{n} distinct pairs, {tokens / n / 2:.0f} target tokens a side on average (SmolLM2 tokenizer); "
          f"key-token share {share:.2%}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
          f"({os.cpu_count()} CPUs)")
    print(f"ours end to end (tokenisation + rapidfuzz both directions + weights): {wall:.2f} s wall (median "
          f"{median:.2f}), {cpu:.2f} s CPU = {n / wall:,.0f} pairs/s ({per_pair * 1e3:.3f} ms/pair); "
          f"{args.rounds} rounds")
    print(f"  the same with Python's cyclic garbage collector left running (align and encode_many pause it): "
          f"{gc_wall:.2f} s wall (median {gc_median:.2f}), {gc_wall / wall:.2f}x ours")
    print(f"  tokenisation alone (encode_many without offsets, both sides): {tok_wall:.2f} s wall, {tok_cpu:.2f} s "
          f"CPU; alignment alone (ids given): {align_wall:.2f} s wall, {align_cpu:.2f} s CPU")
    print(f"  the same texts whole through the Rust batch path (encode_batch_fast, no offsets): {rust_wall:.2f} s "
          f"wall, {rust_cpu:.2f} s CPU = {tokens / rust_cpu / 1e6:.2f} M tokens per CPU second")
    print(f"one pair per call (key_token_weights, {len(sample)} pairs): {one_wall / len(sample) * 1e3:.2f} ms/pair, "
          f"{one_wall / len(sample) / per_pair:.1f}x ours per pair; key tokens and ids identical to batched")
    print(f"pure-Python DP with backtrace (ids given, {len(sample)} pairs, extrapolated): "
          f"{dp_per_pair * 1e3:.1f} ms/pair, ~{dp_per_pair * n:.0f} s for all {n}; edit distances agree on every "
          f"pair; key-token marks agree on {agree:.2%} of tokens (differences are tie-breaks)")
    print(f"alignment alone vs the DP, per pair: {dp_per_pair / (align_wall / n):.0f}x")
    print(f"goal {n} pairs under 1 s end to end: {'met' if wall < 1 else 'not met'} ({wall:.2f} s wall, "
          f"{cpu:.2f} s CPU)")
    print(f"end-to-end speed ratio per pair, pure-Python DP / ours: {dp_per_pair / per_pair:.0f}x (goal 1000x; "
          f"{dp_cpu / len(sample) / (cpu / n):.0f}x by fastest CPU seconds)")

if __name__ == "__main__":
    main()
