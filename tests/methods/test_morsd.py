"""MoRSD's recipe: Std-CoT sequences from the kept rationales, narrowed by a saved selection when given."""

from __future__ import annotations

import pytest

from cotdistill.errors import CotdistillError
from cotdistill.lab import generate_examples
from cotdistill.lab.students import train_tokenizer
from cotdistill.lab.teacher import ScriptedTeacher
from cotdistill.methods import REGISTRY, MethodInputs
from cotdistill.methods.encode import ANSWER
from cotdistill.prompting import plain_prompt


def test_morsd_trains_std_cot_on_the_selection() -> None:
    examples = generate_examples("web_of_lies", 3, seed=2, difficulty={"people": 3})
    rationales = [r for per in ScriptedTeacher().solve(examples, n=2) for r in per]
    tokenizer = train_tokenizer([e.question for e in examples] + [r.text for r in rationales], 400)
    inputs = MethodInputs(examples=examples, rationales=rationales, tokenizer=tokenizer)
    (stage,) = REGISTRY["morsd"].build(inputs, {})
    assert len(stage.sequences) == len(rationales) and stage.instance_weighting is None
    seq = stage.sequences[0]
    assert tokenizer.decode(seq.prompt_ids) == plain_prompt(examples[0])
    assert tokenizer.decode(seq.target_ids, skip_special_tokens=True).strip() == rationales[0].text
    answer = [t for t, s in zip(seq.target_ids, seq.target_segments) if s == ANSWER]
    assert tokenizer.decode(answer, skip_special_tokens=True).strip() == "Therefore, the answer is " + \
        examples[0].answer + "."
    (stage,) = REGISTRY["morsd"].build(inputs, {"selected_ids": [rationales[3].id]})
    assert [s.id for s in stage.sequences] == [f"morsd/{rationales[3].id}"]
    with pytest.raises(CotdistillError, match="not in the inputs"):
        REGISTRY["morsd"].build(inputs, {"selected_ids": ["missing"]})
    with pytest.raises(CotdistillError, match="top_kk"):
        REGISTRY["morsd"].build(inputs, {"top_kk": 1})


def test_morsd_takes_its_own_schedule_so_a_smaller_selection_can_get_as_many_updates_as_std_cot() -> None:
    """MoRSD's source trains a fixed number of updates: on half the data at Std-CoT's epochs it would get half of
    Std-CoT's updates, so the recipe takes a stage schedule (more epochs) as Std-CoT's recipe does."""
    examples = generate_examples("web_of_lies", 3, seed=2, difficulty={"people": 3})
    rationales = [r for per in ScriptedTeacher().solve(examples, n=2) for r in per]
    tokenizer = train_tokenizer([e.question for e in examples] + [r.text for r in rationales], 400)
    inputs = MethodInputs(examples=examples, rationales=rationales, tokenizer=tokenizer)
    (default,) = REGISTRY["morsd"].build(inputs, {})
    assert default.epochs is None and default.learning_rate is None  # the run's settings
    (longer,) = REGISTRY["morsd"].build(inputs, {"stage": {"epochs": 14, "warmup_ratio": 0.1}})
    assert longer.epochs == 14 and longer.extra["warmup_ratio"] == 0.1
    assert [s.id for s in longer.sequences] == [s.id for s in default.sequences]
    with pytest.raises(CotdistillError, match="stage.epochs"):
        REGISTRY["morsd"].build(inputs, {"stage": {"epochs": 0}})


def test_morsd_with_student_candidates_needs_the_student_samples_and_trains_on_what_the_selection_kept() -> None:
    """One teacher CoT per question (Codex on BBH) leaves nothing to select among: `origins: [teacher, student]`
    makes the study sample the Std-CoT student and hand those samples to the selection too."""
    assert REGISTRY["morsd"].needs_for({}) == ("rationales", "selection")
    assert REGISTRY["morsd"].needs_for({"selection": {"origins": ["teacher", "student"]}}) == \
        ("rationales", "student_rationales", "selection")
    examples = generate_examples("web_of_lies", 2, seed=3, difficulty={"people": 3})
    teacher = [per[0] for per in ScriptedTeacher().solve(examples)]
    student = [r.model_copy(update={"id": r.id + "#student", "origin": "student"}) for r in teacher]
    tokenizer = train_tokenizer([e.question for e in examples] + [r.text for r in teacher], 400)
    inputs = MethodInputs(examples=examples, rationales=teacher, student_rationales=student,
                          selected=[teacher[0], student[1]], tokenizer=tokenizer)
    (stage,) = REGISTRY["morsd"].build(inputs, {})  # the study passes no `selection` params to the recipe
    assert [s.id for s in stage.sequences] == [f"morsd/{teacher[0].id}", f"morsd/{student[1].id}"]
