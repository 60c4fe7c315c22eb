"""Answer extraction and grading on BIG-Bench-Hard-shaped outputs."""

from __future__ import annotations

import dataclasses

import pytest

from cotdistill.grading import (
    ANSWER_PHRASE,
    Grade,
    extract_flexible,
    extract_strict,
    final_answer_sentence,
    grade,
    is_correct,
    normalize_answer,
    option_label,
    strip_thinking,
)
from cotdistill.records import Example

DATE = Example(
    id="date-0",
    task="date_understanding",
    question="Yesterday was April 30, 2021. What is the date today in MM/DD/YYYY?",
    answer="(A)",
    answer_format="choice",
    choices=["05/01/2021", "02/23/2021", "03/11/2021", "04/29/2021"],
)
NAVIGATE = Example(
    id="nav-0",
    task="navigate",
    question="If you follow these instructions, do you return to the starting point? Take 2 steps. Turn around.",
    answer="No",
    answer_format="label",
    choices=["Yes", "No"],
)
FALLACY_INVALID = Example(
    id="ff-0",
    task="formal_fallacies",
    question="Is the argument, given the explicitly stated premises, deductively valid or invalid?",
    answer="invalid",
    answer_format="label",
    choices=["valid", "invalid"],
)
FALLACY_VALID = FALLACY_INVALID.model_copy(update={"id": "ff-1", "answer": "valid"})
COUNTING = Example(
    id="oc-0",
    task="object_counting",
    question="I have a fish, a cat, and two rabbits. How many animals do I have?",
    answer="4",
    answer_format="number",
)
ARITHMETIC = Example(
    id="ma-0",
    task="multistep_arithmetic_two",
    question="((5 - 9) * (2 + 3)) =",
    answer="-20",
    answer_format="number",
)
SORTING = Example(
    id="ws-0",
    task="word_sorting",
    question="Sort the following words alphabetically: List: stick gelatine",
    answer="gelatine stick",
    answer_format="text",
)
DYCK = Example(
    id="dy-0",
    task="dyck_languages",
    question="Complete the rest of the sequence, making sure that the parentheses are closed properly. Input: [ { [",
    answer="] } ]",
    answer_format="text",
)


@pytest.mark.parametrize(
    ("text", "example", "expected"),
    [
        ("Let's think step by step. Today is 05/01/2021. Therefore, the answer is (A).", DATE, "(A)"),
        ("Today is 05/01/2021. So the answer is (A). ", DATE, "(A)"),  # trailing space after the period
        ("So the answer is (A)", DATE, "(A)"),
        ("the answer is: (a)", DATE, "(A)"),
        ("THE ANSWER IS (A.)", DATE, "(A)"),
        ("So the answer is **(A)**.", DATE, "(A)"),
        ("**Therefore, the answer is (A).**", DATE, "(A)"),
        ("So the answer is （A）。", DATE, "(A)"),  # full-width brackets
        ("So the answer is A.", DATE, "(A)"),
        ("So the answer is A).", DATE, "(A)"),
        ("So the answer is Option A.", DATE, "(A)"),
        ("So the answer is (A) 05/01/2021.", DATE, "(A)"),
        ("So the answer is 05/01/2021.", DATE, "(A)"),  # option text maps to its letter
        ("The answer is:\n(D)", DATE, "(D)"),
        ("We end up facing backwards. So the answer is No.", NAVIGATE, "No"),
        ("So the answer is: yes", NAVIGATE, "Yes"),
        ("So the answer is No, because we turned around.", NAVIGATE, "No"),
        ("The conclusion does not follow. So the answer is invalid.", FALLACY_INVALID, "invalid"),
        ("So the answer is valid.", FALLACY_INVALID, "valid"),
        ("fish (1) + cat (1) + rabbits (2) = 4. So the answer is 4.", COUNTING, "4"),
        ("So the answer is four.", COUNTING, "4"),
        ("So the answer is 4 animals.", COUNTING, "4"),
        ("-4 * 5 = -20. So the answer is -20.", ARITHMETIC, "-20"),
        ("So the answer is \u221220.", ARITHMETIC, "-20"),  # Unicode minus sign
        ("So the answer is -20.0", ARITHMETIC, "-20"),
        ("So the answer is $1,234.50.", ARITHMETIC, "1234.5"),
        ("So the answer is \\boxed{-20}.", ARITHMETIC, "-20"),
        ("The final answer is $\\boxed{B}$.", DATE, "(B)"),
        ("So the answer is gelatine stick.", SORTING, "gelatine stick"),
        ("So the answer is ] } ].", DYCK, "] } ]"),
        ("So the answer is ]}].", DYCK, "] } ]"),
    ],
)
def test_strict_reads_the_answer_sentence_in_its_variants(text: str, example: Example, expected: str) -> None:
    assert extract_strict(text, example) == expected


def test_last_answer_phrase_wins_over_recited_few_shot_answers() -> None:
    text = (
        "Q: Today is Christmas Eve of 1937. What is the date tomorrow?\n"
        "A: Tomorrow is 12/25/1937. So the answer is (B).\n\n"
        "Yesterday was April 30, 2021, so today is 05/01/2021. So the answer is (A)."
    )
    assert extract_strict(text, DATE) == "(A)"
    assert grade(text, DATE) == Grade("(A)", "(A)", True, True)


def test_only_the_sentence_after_the_phrase_counts() -> None:
    text = "So the answer is (A). Option (C) was tempting but wrong."
    assert extract_strict(text, DATE) == "(A)"
    assert extract_flexible(text, DATE) == "(A)"


def test_negated_phrase_states_no_answer() -> None:
    assert extract_strict("So the answer is (A). The answer is not (B).", DATE) == "(A)"


@pytest.mark.parametrize(
    ("text", "example", "flexible"),
    [
        ("Today is 05/01/2021, which is option (A).", DATE, "(A)"),
        ("Taking 2 steps then turning around leaves us 2 steps away: No.", NAVIGATE, "No"),
        ("Hence the argument is deductively invalid.", FALLACY_INVALID, "invalid"),
        ("fish + cat + 2 rabbits = 4 animals in total.", COUNTING, "4"),
        ("(5 - 9) = -4 and (2 + 3) = 5, so -4 * 5 = -20", ARITHMETIC, "-20"),
        ("The total cost is $1,234.", ARITHMETIC, "1234"),
        ("gelatine starts with g, stick with s.\ngelatine stick", SORTING, "gelatine stick"),
        ("The stack holds [ { [ so we close them.\nAnswer: ] } ]", DYCK, "] } ]"),
    ],
)
def test_flexible_finds_an_answer_when_strict_finds_none(text: str, example: Example, flexible: str) -> None:
    assert extract_strict(text, example) is None
    assert extract_flexible(text, example) == flexible


def test_strict_is_none_when_phrase_has_nothing_after_it() -> None:
    assert extract_strict("Today is 05/01/2021. The answer is", DATE) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>Maybe (B)? The answer is (B).</think>Therefore, the answer is (A).", "Therefore, the answer is (A)."),
        ("Maybe (B)... the answer is (B).</think>\nTherefore, the answer is (A).", "Therefore, the answer is (A)."),
        ("Therefore, the answer is (A).<think>wait, the answer is (B)", "Therefore, the answer is (A)."),
        ("<think>never finished: the answer is (B)", ""),
    ],
)
def test_strip_thinking_keeps_only_the_visible_answer(text: str, expected: str) -> None:
    assert strip_thinking(text) == expected


def test_answer_inside_think_tags_is_not_graded() -> None:
    text = "<think>The answer is (B). Hmm, yesterday was 04/30, so (A).</think>\n\nSo the answer is (A)."
    assert grade(text, DATE) == Grade("(A)", "(A)", True, True)
    unfinished = "<think>So the answer is (A). Let me double-check"
    assert grade(unfinished, DATE) == Grade(None, None, False, False)


def test_option_letter_not_among_choices_is_rejected() -> None:
    text = "Today is 05/01/2021, option (A). So the answer is (Z)."
    assert extract_strict(text, DATE) is None
    assert extract_flexible(text, DATE) is None  # it stated (Z): the fallback does not answer for it
    assert extract_flexible("Between (A) and (E): (E).", DATE) == "(A)"  # no answer phrase: (E) is skipped
    assert normalize_answer("(E)", DATE) is None


# Real endings of code-davinci-002's BBH outputs (BBH release, codex-cot/<task>_few_shot_template_0-255000.json,
# output index in the comment). Each states an answer that is not one right option; the official score
# counts them wrong, so flexible must too, however clearly the reasoning before names the gold.
HYPERBATON_1 = Example(
    id="hyperbaton/1",
    task="hyperbaton",
    question="Which sentence has the correct adjective order:\nOptions:\n(A) rubber gray walking Mexican midsize cat\n"
    "(B) midsize gray Mexican rubber walking cat",
    answer="(B)",
    answer_format="choice",
    choices=["rubber gray walking Mexican midsize cat", "midsize gray Mexican rubber walking cat"],
)
RUIN_NAMES_7 = Example(
    id="ruin_names/7",
    task="ruin_names",
    question="Which of the following is a humorous edit of this artist or movie name: 'guns n' roses'?",
    answer="(D)",
    answer_format="choice",
    choices=["gunh n' roses", "guns n' ropes", "guns n'z roses", "guns n' hoses"],
)
RUIN_NAMES_13 = Example(
    id="ruin_names/13",
    task="ruin_names",
    question="Which of the following is a humorous edit of this artist or movie name: 'the three stooges'?",
    answer="(D)",
    answer_format="choice",
    choices=["the three stmooges", "the three snooges", "the three suooges", "the three stodges"],
)


@pytest.mark.parametrize(
    ("text", "example"),
    [
        (  # hyperbaton 1: a hedge between both options
            "Because 2 < 5 < 6 < 7 < 8 is correct, (B) has the correct ordering. So the answer is (A) and (B).",
            HYPERBATON_1,
        ),
        (  # ruin_names 7: a hedge between two of four options
            "Above the above, the only humorous edits are (B) and (D). So the answer is (B) or (D).",
            RUIN_NAMES_7,
        ),
        (  # ruin_names 13: an option that does not exist (four options, A to D)
            '(D) "the three stodges": Here the word "stooges" is changed to "stodges", and "stodges" is an actual '
            'word; however, "stodges" does not sound as humorous as "stooges".\nAbove the above, none of the edits '
            "are humorous. So the answer is (E).",
            RUIN_NAMES_13,
        ),
    ],
)
def test_flexible_never_overrides_a_stated_answer(text: str, example: Example) -> None:
    assert grade(text, example) == Grade(None, None, False, False)


def test_flexible_falls_back_only_without_an_answer_phrase() -> None:
    # The same reasoning cut off before its answer sentence (as Codex's truncated outputs are): no phrase.
    text = "Because 2 < 5 < 6 < 7 < 8 is correct, (B) has the correct ordering."
    assert grade(text, HYPERBATON_1) == Grade(None, "(B)", False, True)


def test_flexible_ignores_lowercase_parenthesised_letters_in_prose() -> None:
    assert extract_flexible("Count the apple(s) and pear(s).", DATE) is None


def test_hedged_choice_is_not_a_strict_answer() -> None:
    assert extract_strict("So the answer is (A) or (B).", DATE) is None


@pytest.mark.parametrize(
    ("text", "example", "expected"),
    [
        ("The argument is invalid.", FALLACY_VALID, "invalid"),
        ("It looks valid at first, but it is invalid", FALLACY_VALID, "invalid"),
        ("It looks invalid at first, but it is valid", FALLACY_INVALID, "valid"),
        ("Noah walks north. Nothing else.", NAVIGATE, None),  # "No" only as a whole word
        ("So the argument is not valid.", FALLACY_VALID, None),  # a negated label is no answer
    ],
)
def test_label_fallback_uses_whole_words(text: str, example: Example, expected: str | None) -> None:
    assert extract_flexible(text, example) == expected


def test_invalid_is_never_scored_as_valid() -> None:
    assert not is_correct("invalid", FALLACY_VALID)
    assert not is_correct("valid", FALLACY_INVALID)
    assert not grade("So the answer is invalid.", FALLACY_VALID).flexible_correct
    assert not is_correct("not valid", FALLACY_VALID)


@pytest.mark.parametrize(
    ("predicted", "example"),
    [
        ("20", ARITHMETIC),  # suffix of "-20"
        ("0", ARITHMETIC),
        ("stick", SORTING),  # suffix of "gelatine stick"
        ("} ]", DYCK),  # suffix of "] } ]"
        ("] } ] ]", DYCK),
        ("(B)", DATE),
        ("", DATE),
        (None, DATE),
    ],
)
def test_wrong_answers_that_overlap_the_gold_are_not_correct(predicted: str | None, example: Example) -> None:
    assert not is_correct(predicted, example)


@pytest.mark.parametrize(
    ("answer", "example", "expected"),
    [
        ("(B).", DATE, "(B)"),
        ("b", DATE, "(B)"),
        ("[C]", DATE, "(C)"),
        ("02/23/2021.", DATE, "(B)"),
        ("(Z)", DATE, None),
        ("Maybe", NAVIGATE, None),
        ("NO", NAVIGATE, "No"),
        ("1,234", ARITHMETIC, "1234"),
        ("-3.50", ARITHMETIC, "-3.5"),
        ("20.0", ARITHMETIC, "20"),
        ("-0", ARITHMETIC, "0"),
        ("20%", ARITHMETIC, "20"),
        ("20 - 5", ARITHMETIC, None),  # an expression, not an answer
        ("twenty-one", ARITHMETIC, None),
        ("  Gelatine   stick. ", SORTING, "Gelatine stick"),
        ("", SORTING, None),
    ],
)
def test_normalize_answer_canonicalises_per_format(answer: str, example: Example, expected: str | None) -> None:
    assert normalize_answer(answer, example) == expected


@pytest.mark.parametrize(
    ("predicted", "example"),
    [
        ("(a)", DATE),
        ("A", DATE),
        ("05/01/2021", DATE),
        ("no", NAVIGATE),
        ("-20.0", ARITHMETIC),
        ("Gelatine Stick", SORTING),
        ("]}]", DYCK),
    ],
)
def test_equivalent_spellings_of_the_gold_are_correct(predicted: str, example: Example) -> None:
    assert is_correct(predicted, example)


@pytest.mark.parametrize("example", [DATE, NAVIGATE, FALLACY_INVALID, COUNTING, ARITHMETIC, SORTING, DYCK])
def test_final_answer_sentence_round_trips_through_strict(example: Example) -> None:
    sentence = final_answer_sentence(example.answer)
    assert sentence == f"{ANSWER_PHRASE} {example.answer}."
    assert grade("Some reasoning.\n" + sentence, example).strict_correct


def test_final_answer_sentence_does_not_double_the_period() -> None:
    assert final_answer_sentence("(B). ") == "Therefore, the answer is (B)."


def test_grade_reports_strict_and_flexible_separately() -> None:
    result = grade("Yesterday was 04/30, so today is 05/01/2021, i.e. (A).", DATE)
    assert result == Grade(strict=None, flexible="(A)", strict_correct=False, flexible_correct=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.strict = "(A)"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("index", "label"),
    [(0, "(A)"), (25, "(Z)"), (26, "(AA)"), (27, "(AB)"), (32, "(AG)"), (40, "(AO)"), (51, "(AZ)"), (52, "(BA)"),
     (701, "(ZZ)")],
)
def test_option_labels_go_on_past_z_in_capitals(index: int, label: str) -> None:
    assert option_label(index) == label


def test_option_labels_are_distinct_and_negative_index_is_an_error() -> None:
    labels = [option_label(i) for i in range(702)]
    assert len(set(labels)) == 702
    with pytest.raises(ValueError, match="negative"):
        option_label(-1)


# BB-sub's intersect_geometry questions offer the 41 counts "0".."40" (BIG-bench intersect_geometry/shapes_2,
# example 19802: a polygon and a circle, 4 intersection points). BB-sub's shuffle put "4" 34th, past Z.
_COUNTS = [str(n) for n in range(41) if n != 4]
_COUNTS.insert(33, "4")
GEOMETRY = Example(
    id="bbsub/intersect_geometry_shapes_2/19802",
    task="intersect_geometry_shapes_2",
    question="How many intersection points are there?",
    answer="(AH)",
    answer_format="choice",
    choices=_COUNTS,
)


def test_labels_past_z_are_read_and_graded() -> None:
    assert normalize_answer("(AH)", GEOMETRY) == "(AH)"
    assert grade("There are 4 points. So the answer is (AH).", GEOMETRY).strict_correct
    assert grade("So the answer is AH.", GEOMETRY).strict_correct
    assert grade("so the answer is (ah).", GEOMETRY).strict_correct
    assert grade("So the answer is 4.", GEOMETRY).strict_correct  # the option's text
    assert grade("The circle meets two sides twice: (AH).", GEOMETRY).flexible_correct
    assert normalize_answer("(AP)", GEOMETRY) is None  # 41 options end at (AO)
    assert normalize_answer("(AB)", DATE) is None  # four options end at (D)


def test_a_gold_past_z_is_not_read_as_a_single_letter() -> None:
    # The old labels went on after Z with "[", "\\", "]", "^", "_", "`", "a", "b": this gold was "(b)", which
    # reads as "(B)", so an output answering option B (the count "1") was scored right.
    assert not is_correct("(B)", GEOMETRY)
    assert not grade("So the answer is (B).", GEOMETRY).strict_correct


def test_bare_lower_case_words_are_not_two_letter_labels() -> None:
    # "an" is a word, not option (AN); as an option's own text it still maps to that option.
    assert normalize_answer("an", GEOMETRY) is None
    article = GEOMETRY.model_copy(update={"choices": ["a", "an", "the"], "answer": "(B)"})
    assert normalize_answer("an", article) == "(B)"


# BIG-bench gre_reading_comprehension, example 4: target_scores give 1 to two of its three options.
GRE = Example(
    id="bbsub/gre_reading_comprehension/4",
    task="gre_reading_comprehension",
    question="Which of the following does the passage imply regarding birds?",
    answer="(B)",
    alternatives=["(C)"],
    answer_format="choice",
    choices=[
        "They required more food than a similarly-sized mammal.",
        "They possess certain traits that are not common to all ectotherms.",
        "Over time they might have undergone a change in how they regulate body temperature.",
    ],
)


@pytest.mark.parametrize(("answer", "right"), [("(B)", True), ("(C)", True), ("(A)", False), ("(B) or (C)", False)])
def test_any_of_several_right_options_is_correct(answer: str, right: bool) -> None:
    assert grade(f"So the answer is {answer}.", GRE).strict_correct is right
    assert is_correct(
        "Over time they might have undergone a change in how they regulate body temperature.", GRE
    )  # an alternative named by its text


def test_alternatives_of_other_formats_count_too() -> None:
    both = NAVIGATE.model_copy(update={"alternatives": ["Yes"]})
    assert is_correct("yes", both) and is_correct("No", both)
    assert not is_correct("yes", NAVIGATE)
