"""Every family: seeded, reproducible BBH-format questions that the scripted teacher solves exactly."""

from __future__ import annotations

import random
import re

import pytest

from cotdistill.lab import FAMILIES, bbh_programmatic_examples, generate_examples
from cotdistill.lab.teacher import ScriptedTeacher

from lab_testutil import strictly_correct


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_clean_cots_reach_the_gold_answer_on_1000_questions(family: str) -> None:
    examples = generate_examples(family, 1000, seed=11)
    rationales = [r[0] for r in ScriptedTeacher(seed=5).solve(examples)]
    assert sum(strictly_correct(r.text, e) for r, e in zip(rationales, examples)) == 1000
    assert all(r.correct and r.error_type is None and r.key_spans == [] for r in rationales)
    # several phrasings, so a student cannot lean on one template
    openings = {r.text.split(".")[0] for r in rationales}
    assert len(openings) >= 2


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_generation_is_seeded_and_parses_back(family: str) -> None:
    fam = FAMILIES[family]
    first = generate_examples(family, 30, seed=3)
    assert first == generate_examples(family, 30, seed=3)
    assert [e.question for e in first] != [e.question for e in generate_examples(family, 30, seed=4)]
    assert len({e.question for e in first}) == 30
    for _ in range(30):  # the parser recovers exactly the problem a question was rendered from
        puzzle = fam.generate(random.Random(_), **fam.default_difficulty)
        from cotdistill.records import Example
        ex = Example(id="x", task=family, question=puzzle.question, answer=puzzle.answer,
                     answer_format=puzzle.answer_format, choices=puzzle.choices)
        parsed = fam.parse(ex)
        if family == "tracking_shuffled_objects":
            assert (parsed.items, parsed.swaps, parsed.asked) == (puzzle.problem.items, puzzle.problem.swaps,
                                                                 puzzle.problem.asked)
        else:
            assert parsed == puzzle.problem


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_hard_settings_are_harder_and_still_solved(family: str) -> None:
    fam = FAMILIES[family]
    easy = generate_examples(family, 50, seed=1)
    hard = generate_examples(family, 50, seed=1, difficulty=fam.hard_difficulty)
    teacher = ScriptedTeacher()
    easy_len = sum(len(r[0].text) for r in teacher.solve(easy))
    hard_cots = teacher.solve(hard)
    assert all(strictly_correct(r[0].text, e) for r, e in zip(hard_cots, hard))
    assert sum(len(r[0].text) for r in hard_cots) > 1.2 * easy_len  # more steps to take


def test_bbh_programmatic_formats() -> None:
    booleans = bbh_programmatic_examples("boolean_expressions", 200, seed=0)
    assert all(re.fullmatch(r"(not |True |False |and |or |\( |\) )+is", e.question) for e in booleans)
    assert {e.answer for e in booleans} == {"True", "False"}
    assert all(e.answer_format == "label" and e.choices == ["True", "False"] for e in booleans)
    assert all(e.task == "boolean_expressions" for e in booleans)
    # the answer is what Python makes of the expression
    assert all(str(eval(e.question[:-3])) == e.answer for e in booleans)

    arithmetic = bbh_programmatic_examples("multistep_arithmetic_two", 200, seed=0)
    group = r"-?\d( [-+*] -?\d){3}"
    assert all(re.fullmatch(rf"\(\({group}\) [-+*] \({group}\)\) =", e.question) for e in arithmetic)
    assert all(str(eval(e.question[:-2])) == e.answer and e.answer_format == "number" for e in arithmetic)

    lies = bbh_programmatic_examples("web_of_lies", 200, seed=0)
    sentence = r"\w+ (tells the truth|lies)\."
    pattern = rf"Question: {sentence}( \w+ says {sentence}){{4}} Does \w+ tell the truth\?"
    assert all(re.fullmatch(pattern, e.question) for e in lies)
    assert {e.answer for e in lies} == {"Yes", "No"} and all(e.choices == ["Yes", "No"] for e in lies)
    assert bbh_programmatic_examples("web_of_lies", 200, seed=0) == lies
    with pytest.raises(Exception, match="not a programmatic BBH subtask"):
        bbh_programmatic_examples("navigate", 5, seed=0)
