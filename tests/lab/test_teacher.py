"""The scripted teacher: typed mistakes at the stated rate, rectify/corrupt pairs with exact key spans."""

from __future__ import annotations

import difflib
from collections import Counter

import pytest

from cotdistill.lab import FAMILIES, generate_examples
from cotdistill.lab.core import Fault, Style, counterpart_spans
from cotdistill.lab.teacher import SALTS_PER_SITE, ScriptedTeacher
from cotdistill.records import Rationale
from cotdistill.teachers.base import Teacher

from lab_testutil import strictly_correct

MISTAKES = {"calculation", "logical", "knowledge"}


def test_it_is_a_teacher() -> None:
    assert isinstance(ScriptedTeacher(), Teacher)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_mistakes_change_the_answer_at_the_stated_rate(family: str) -> None:
    examples = generate_examples(family, 600, seed=2)
    teacher = ScriptedTeacher(mistake_rate=0.3, spurious_rate=0.1, seed=9)
    rationales = [r[0] for r in teacher.solve(examples)]
    wrong = 0
    kinds: Counter[str | None] = Counter()
    for example, r in zip(examples, rationales):
        kinds[r.error_type] += 1
        right = strictly_correct(r.text, example)
        assert r.answer is not None and right == r.correct
        if r.error_type in MISTAKES:
            assert not right and r.key_spans
        elif r.error_type == "spurious":
            assert right and r.key_spans  # the right answer through broken steps
        else:
            assert right and r.key_spans == []
        wrong += not right
    # 600 draws: a binomial standard deviation of about 0.019 around 0.3
    assert abs(wrong / 600 - 0.3) < 0.06, (wrong, kinds)
    assert abs(kinds["spurious"] / 600 - 0.1) < 0.04, kinds
    assert set(kinds) - {None, "spurious"} == set(FAMILIES[family].mistake_types)


def test_mistake_types_follow_the_weights() -> None:
    examples = generate_examples("object_counting", 300, seed=4)
    teacher = ScriptedTeacher(mistake_rate=1.0, mistake_types={"knowledge": 1.0})
    assert {r[0].error_type for r in teacher.solve(examples)} == {"knowledge"}
    # a family without the weighted type falls back to its own, so the rate still holds
    lies = generate_examples("web_of_lies", 50, seed=4)
    assert {r[0].error_type for r in teacher.solve(lies)} == {"logical"}


def test_a_type_weighted_zero_never_occurs_in_a_family_that_has_a_weighted_one() -> None:
    """boolean_expressions has logical and knowledge mistakes: weighting one of them keeps the other out (so a
    config can pin the mistakes it studies), and a knowledge mistake is the wrong truth-table fact it names."""
    examples = generate_examples("boolean_expressions", 200, seed=4)
    only = {w: ScriptedTeacher(mistake_rate=1.0, mistake_types={w: 1.0}).solve(examples)
            for w in ("logical", "knowledge")}
    assert {r[0].error_type for r in only["logical"]} == {"logical"}
    assert {r[0].error_type for r in only["knowledge"]} == {"knowledge", None}  # not every question has a site
    by_id = {e.id: e for e in examples}
    for (r,) in only["knowledge"]:
        if r.error_type == "knowledge":
            start, end = r.first_wrong_step
            reduction = r.text[start:end].removeprefix("Finally, ").split(",")[0].split(";")[0]
            assert reduction in ("True or True is False", "True or True gives False", "True or True is False.",
                                 "True or True gives False.") and not r.correct
            assert r.answer != by_id[r.example_id].answer


def test_several_samples_differ_and_are_reproducible() -> None:
    examples = generate_examples("navigate", 20, seed=1)
    teacher = ScriptedTeacher(mistake_rate=0.5, seed=3)
    samples = teacher.solve(examples, n=4)
    assert [[r.sample_index for r in s] for s in samples] == [[0, 1, 2, 3]] * 20
    assert samples == ScriptedTeacher(mistake_rate=0.5, seed=3).solve(examples, n=4)
    assert any(len({r.text for r in s}) > 1 for s in samples)


def _check_pair(x: Rationale, y: Rationale) -> list[tuple[int, int]]:
    """x's key spans cover exactly the steps where x and y differ; returns y's matching spans."""
    assert x.key_spans
    y_spans = counterpart_spans(x.text, x.key_spans, y.text)  # raises if the texts differ outside the spans
    assert len(y_spans) == len(x.key_spans)
    for (a1, a2), (b1, b2) in zip(x.key_spans, y_spans):
        mine, theirs = x.text[a1:a2], y.text[b1:b2]
        # a character diff of the span pair finds changes: no span is a shared step
        opcodes = difflib.SequenceMatcher(None, mine, theirs, autojunk=False).get_opcodes()
        assert any(tag != "equal" for tag, *_ in opcodes), (mine, theirs)
    # everything outside the spans is character-for-character the same
    outside_x = "".join(x.text[i] for i in range(len(x.text)) if not any(a <= i < b for a, b in x.key_spans))
    outside_y = "".join(y.text[i] for i in range(len(y.text)) if not any(a <= i < b for a, b in y_spans))
    assert outside_x == outside_y
    return y_spans


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_key_spans_of_rectified_and_corrupted_pairs_cover_only_the_differing_steps(family: str) -> None:
    examples = generate_examples(family, 60, seed=7)
    teacher = ScriptedTeacher(mistake_rate=0.5, seed=1)
    rationales = [r[0] for r in teacher.solve(examples)]
    by_id = {e.id: e for e in examples}
    wrong = [(by_id[r.example_id], r) for r in rationales if not r.correct]
    right = [(by_id[r.example_id], r) for r in rationales if r.correct]
    assert wrong and right

    for (example, original), rectified in zip(wrong, teacher.rectify(wrong)):
        assert rectified.origin == "rectified" and rectified.parent == original.id
        assert rectified.correct and strictly_correct(rectified.text, example)
        # the wrong CoT's own spans (against the clean path) are the counterpart of the rectified one's
        counterpart = _check_pair(rectified, original)
        assert [(a, b) for a, b in counterpart if b > a] == original.key_spans

    fam = FAMILIES[family]
    for error_type in fam.mistake_types:
        corrupted = teacher.corrupt(right, error_type=error_type)
        assert Counter(c.error_type for c in corrupted)[error_type] > 0
        for (example, _), bad in zip(right, corrupted):
            if bad.error_type != error_type:  # another type only where no mistake of this one changes the answer
                problem = fam.parse(example)
                clean = fam.work(problem, Style(0)).answer
                assert all(fam.work(problem, Style(0), Fault(site, error_type, salt)).answer == clean
                           for site in fam.fault_steps(problem, error_type) for salt in range(SALTS_PER_SITE))
        for (example, original), bad in zip(right, corrupted):
            assert bad.origin == "corrupted" and bad.parent == original.id and not bad.correct
            assert bad.error_type in FAMILIES[family].mistake_types
            assert not strictly_correct(bad.text, example)
            _check_pair(bad, original)


def test_rectify_in_a_fresh_teacher_recognises_the_path() -> None:
    # rectify is a pure function of (seed, example, sample): a new process continues the same path
    examples = generate_examples("multistep_arithmetic_two", 40, seed=8)
    wrong = [(e, r[0]) for e, r in zip(examples, ScriptedTeacher(mistake_rate=1.0, seed=2).solve(examples))]
    rectified = ScriptedTeacher(mistake_rate=1.0, seed=2).rectify(wrong)
    for (_, w), fixed in zip(wrong, rectified):
        assert fixed.text[: w.key_spans[0][0]] == w.text[: w.key_spans[0][0]]  # the same path up to the mistake
        assert fixed.key_spans[0][0] == w.key_spans[0][0]


def test_rectify_a_foreign_cot_marks_the_sentences_that_differ() -> None:
    example = generate_examples("web_of_lies", 1, seed=3)[0]
    clean = ScriptedTeacher(seed=5).solve([example])[0][0]
    # somebody else's wrong CoT: our clean one with its conclusion flipped
    flipped = "No" if example.answer == "Yes" else "Yes"
    foreign_text = clean.text.replace(f"the answer is {example.answer}.", f"the answer is {flipped}.")
    foreign = Rationale(id="other", example_id=example.id, text=foreign_text, answer=flipped, correct=False)
    fixed = ScriptedTeacher(seed=5).rectify([(example, foreign)])[0]
    assert fixed.text == clean.text
    assert [fixed.text[a:b] for a, b in fixed.key_spans] == [f"Therefore, the answer is {example.answer}."]
