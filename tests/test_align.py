"""Key-token alignment: minimal edit scripts, the documented tie-break, and accuracy on lab pairs."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest
from rapidfuzz.distance import Levenshtein

from cotdistill.align import SpanScore, edit_script, key_token_mask, key_token_weights
from cotdistill.lab import FAMILIES, ScriptedTeacher, generate_examples
from cotdistill.lab.cli import _dual_pairs as dual_pairs  # what `cotdistill lab --pairs` writes
from cotdistill.records import DualPair
from cotdistill.show import Tally, pair_truth_spans, view_pair


def _bench():
    """The pure-Python reference DP lives in bench/align.py (it is the benchmark's baseline)."""
    path = Path(__file__).parents[1] / "bench" / "align.py"
    spec = importlib.util.spec_from_file_location("bench_align", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


levenshtein_dp = _bench().levenshtein_dp


@pytest.fixture(scope="module")
def tokenizer():
    from cotdistill.models import load_tokenizer

    return load_tokenizer("smollm2-135m-instruct")


def _cost(script) -> int:
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in script if tag != "equal")


def test_masks_come_from_a_minimal_alignment_in_each_direction():
    rng = random.Random(0)
    for _ in range(200):
        a = [rng.randrange(6) for _ in range(rng.randrange(0, 25))]
        b = [rng.randrange(6) for _ in range(rng.randrange(0, 25))] if rng.random() < 0.5 else \
            [t if rng.random() < 0.8 else rng.randrange(6) for t in a]
        distance, _, _ = levenshtein_dp(a, b)
        assert Levenshtein.distance(a, b) == distance
        mask_a, mask_b = key_token_mask(a, b)
        for src, dst, mask in ((a, b, mask_a), (b, a, mask_b)):
            script = edit_script(src, dst)
            assert _cost(script) == distance  # the alignment behind the mask is a minimal one
            unmatched = [i for tag, i1, i2, *_ in script if tag in ("replace", "delete") for i in range(i1, i2)]
            assert [i for i, k in enumerate(mask) if k] == unmatched
            # the unmarked tokens are exactly the ones matched with equal tokens of the other side
            kept = [t for t, k in zip(src, mask) if not k]
            assert kept == [dst[j] for tag, _, _, j1, j2 in script if tag == "equal" for j in range(j1, j2)]
        # a side can only keep tokens the other side has: at least `distance` tokens are marked in all
        assert sum(mask_a) + sum(mask_b) >= distance


def test_identical_sequences_have_no_key_tokens_and_empty_ones_all():
    assert key_token_mask([3, 1, 4, 1, 5], [3, 1, 4, 1, 5]) == ([False] * 5, [False] * 5)
    assert key_token_mask([3, 1], []) == ([True, True], [])


def test_a_substituted_step_marks_exactly_its_tokens():
    prefix, suffix = [1, 2, 3, 4, 5], [6, 7, 8]
    step_a, step_b = [20, 21, 22], [30, 31, 32, 33]  # no token in common
    mask_a, mask_b = key_token_mask(prefix + step_a + suffix, prefix + step_b + suffix)
    assert mask_a == [False] * 5 + [True] * 3 + [False] * 3
    assert mask_b == [False] * 5 + [True] * 4 + [False] * 3


def test_a_substituted_number_marks_only_its_tokens_with_the_student_tokenizer(tokenizer):
    good = "Take 3 steps forward. Now at 5. Take 2 steps back. Now at 3. Therefore, the answer is No."
    bad = "Take 3 steps forward. Now at 5. Take 2 steps back. Now at 7. Therefore, the answer is Yes."
    keys = key_token_weights(tokenizer, good, bad, alpha=1.0, beta=0.025)
    for text, enc, key, changed in ((good, keys.correct, keys.correct_key, {" 3", " No"}),
                                    (bad, keys.wrong, keys.wrong_key, {" 7", " Yes"})):
        pieces = {text[a:b] if text[a:b].startswith(" ") else " " + text[a:b]
                  for (a, b), k in zip(enc.target_offsets, key) if k}
        assert pieces == changed
    assert set(keys.correct_weights) == {0.0, 1.0} and set(keys.wrong_weights) == {0.0, -0.025}


def test_tie_break_is_the_documented_one():
    # common prefix first: the repeated run is attributed to its later copy
    assert key_token_mask([1, 2, 3, 1, 2, 3, 4], [1, 2, 3, 4])[0] == [False] * 3 + [True] * 3 + [False]
    # on a tie, matching equal tokens beats replacing everything; deletions go as late as possible
    assert key_token_mask([5, 9, 5], [7, 5, 8])[0] == [False, True, True]
    assert edit_script([9, 9], [8]) == [("replace", 0, 1, 0, 1), ("delete", 1, 2, 1, 1)]


def _lab_pairs(family: str, n: int) -> list[DualPair]:
    teacher = ScriptedTeacher(mistake_rate=0.5, seed=11)
    examples = generate_examples(family, n, seed=4)
    return dual_pairs(teacher, examples, [rs[0] for rs in teacher.solve(examples)])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_key_tokens_on_lab_pairs_lie_in_the_true_key_steps(tokenizer, family):
    """Precision: edit-distance key tokens fall inside the steps the teacher changed. Recall is low by design
    (a changed step shares most of its words with its counterpart), so each true span is only required to be
    found, i.e. to hold some key token, in most pairs."""
    tally = Tally()
    for pair in _lab_pairs(family, 12):
        assert pair_truth_spans(pair) is not None
        tally.add(view_pair(tokenizer, pair))
    score = tally.score
    assert tally.with_truth == tally.pairs >= 10
    assert score.precision >= 0.95, (family, score)
    assert 0 < score.recall < 1
    assert score.span_recall >= 0.75, (family, score)


def test_span_score_counts_tokens():
    score = SpanScore()
    offsets = [(0, 2), (2, 4), (4, 6), (6, 8)]
    score.add(offsets, [True, True, False, False], [(1, 5)])  # truth: tokens 0,1,2; predicted 0,1
    assert (score.predicted, score.truth, score.hit, score.spans_found) == (2, 3, 2, 1)
    assert score.precision == 1.0 and score.recall == pytest.approx(2 / 3)
