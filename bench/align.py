"""Key-token alignment: ours (tokenisation + rapidfuzz, both directions) vs a pure-Python Levenshtein DP.

Pairs: lab dual pairs (scripted teacher, every family), consecutive pairs joined until each side has at least
`--tokens` SmolLM2 tokens, then cut at that many tokens; so both methods see the same ~300-token pairs.
Ours: `align.key_token_weights` on the two texts, i.e. tokenising both sides, aligning in both directions and
weighting. Baseline: `levenshtein_dp` below on the already tokenised ids (tokenisation not counted for it): a
full (n+1)x(m+1) table and a backtrace that prefers delete, then insert, then the diagonal, as EDIT's script does.
Both must agree on the edit distance of every pair. The last line is the speed ratio (baseline time / ours).
Each side is timed as the best of --rounds runs (the machine is shared).
Usage: python bench/align.py [--pairs 40] [--tokens 300] [--rounds 3] [--model smollm2-135m-instruct]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence


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
    """`count` (correct, wrong) text pairs of about `tokens` tokens each, from lab dual pairs of every family."""
    from cotdistill.lab import ScriptedTeacher
    from cotdistill.lab.families import FAMILIES
    from cotdistill.lab.generate import generate_examples

    teacher = ScriptedTeacher(seed=0)
    sources: list[tuple[str, str]] = []
    for family in sorted(FAMILIES):
        examples = generate_examples(family, 3 * count, seed=7)
        items = [(e, r[0]) for e, r in zip(examples, teacher.solve(examples))]
        sources += [(right.text, bad.text) for (_, right), bad in zip(items, teacher.corrupt(items))]
    out: list[tuple[str, str]] = []
    k = 0
    while len(out) < count:
        good, bad = [], []
        while len(tokenizer(" ".join(good)).input_ids) < tokens or len(tokenizer(" ".join(bad)).input_ids) < tokens:
            g, b = sources[k % len(sources)]
            good.append(g)
            bad.append(b)
            k += 1
        out.append((_cut(" ".join(good), tokens, tokenizer), _cut(" ".join(bad), tokens, tokenizer)))
    return out


def _cut(text: str, tokens: int, tokenizer) -> str:
    offsets = tokenizer(text, return_offsets_mapping=True).offset_mapping
    return text[: offsets[tokens - 1][1]]


def _best(rounds: int, work):
    """(fastest wall time over `rounds` runs of `work`, its result)."""
    best, result = float("inf"), None
    for _ in range(rounds):
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    from cotdistill.align import key_token_mask, key_token_weights
    from cotdistill.models import load_tokenizer

    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    tokenizer = load_tokenizer(args.model)
    texts = lab_pair_texts(args.pairs, args.tokens, tokenizer)
    key_token_weights(tokenizer, *texts[0])  # warm-up

    # best of `--rounds` for each side: the machine is shared, and the minimum is the least disturbed run
    t_ours, ours = _best(args.rounds, lambda: [key_token_weights(tokenizer, good, bad) for good, bad in texts])
    ids = [(k.correct.target_ids, k.wrong.target_ids) for k in ours]
    t_dp, reference = _best(args.rounds, lambda: [levenshtein_dp(a, b) for a, b in ids])
    t_align, _ = _best(args.rounds, lambda: [key_token_mask(a, b) for a, b in ids])

    from rapidfuzz.distance import Levenshtein

    lengths = [len(a) + len(b) for a, b in ids]
    for (a, b), (dist, _, _) in zip(ids, reference):
        assert Levenshtein.distance(a, b) == dist, "rapidfuzz and the DP disagree on an edit distance"
    same = sum(x == y for k, (_, ma, mb) in zip(ours, reference)
               for x, y in zip(k.correct_key + k.wrong_key, ma + mb))
    marked_ours = sum(sum(k.correct_key) + sum(k.wrong_key) for k in ours)
    marked_dp = sum(sum(ma) + sum(mb) for _, ma, mb in reference)
    print(f"{len(texts)} pairs, {sum(lengths) / len(lengths) / 2:.0f} target tokens per side on average "
          f"(SmolLM2 tokenizer); edit distances agree on every pair")
    print(f"key tokens: ours {marked_ours}, DP {marked_dp}; masks agree on {same / sum(lengths):.2%} of tokens "
          "(differences are tie-breaks)")
    print(f"ours (tokenise + rapidfuzz both directions): {t_ours * 1e3 / len(texts):.2f} ms/pair; "
          f"pure-Python DP with backtrace (ids given): {t_dp * 1e3 / len(texts):.1f} ms/pair")
    print(f"alignment alone (ids given, rapidfuzz both directions): {t_align * 1e3 / len(texts):.3f} ms/pair, "
          f"{t_dp / t_align:.0f}x the DP")
    print(f"speed ratio, pure-Python DP / ours: {t_dp / t_ours:.0f}x")


if __name__ == "__main__":
    main()
