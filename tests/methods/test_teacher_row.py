"""The teacher's accuracy row: first teacher sample per question, strict and flexible, per task and overall."""

from __future__ import annotations

import pytest

import baselines_testdata as D
from cotdistill.methods import teacher_accuracy
from cotdistill.records import Rationale


def r(id: str, ex, text: str, sample: int = 0, origin: str = "teacher", truncated: bool = False) -> Rationale:
    return Rationale(id=id, example_id=ex.id, text=text, origin=origin, sample_index=sample, truncated=truncated)


def test_teacher_row_on_a_hand_made_set():
    rationales = [
        # ex1: first sample strictly right
        r("a", D.EX1, "Monday, so Tuesday. Therefore, the answer is (B)."),
        # ex2: the later sample is listed first and is right; the first sample (index 0) is wrong: it counts
        r("b1", D.EX2, "5 - 25 = -20. Therefore, the answer is -20.", sample=1),
        r("b0", D.EX2, "5 - 25 = 20. Therefore, the answer is 20.", sample=0),
        # ex3: no answer phrase, the flexible rule finds the label; cut off at the length limit
        r("c", D.EX3, "not False gives True", truncated=True),
        # ex4: only a rectified CoT, which is not the teacher's own answer: counts as missing
        r("d", D.EX4, "2 + 2 = 4. Therefore, the answer is 4.", origin="rectified"),
    ]
    row = teacher_accuracy(D.EXAMPLES, rationales)
    assert row["missing"] == 1
    assert row["overall"] == {"n": 4, "strict": 0.25, "flexible": 0.5, "truncated": 1}
    assert row["benchmarks"]["bbh"] == row["overall"]
    assert row["tasks"]["bbh/date"] == {"n": 1, "strict": 1.0, "flexible": 1.0, "truncated": 0}
    assert row["tasks"]["bbh/arith"] == {"n": 2, "strict": 0.0, "flexible": 0.0, "truncated": 0}
    assert row["tasks"]["bbh/bool"] == {"n": 1, "strict": 0.0, "flexible": 1.0, "truncated": 1}


def test_teacher_row_with_no_rationales_is_all_missing():
    row = teacher_accuracy(D.EXAMPLES, [])
    assert row["missing"] == 4 and row["overall"]["strict"] == pytest.approx(0.0)
