"""The combined recipe (MoRSD selection -> EDIT, CoPeD on top): what each part feeds, and that each ablation
drops exactly its part and the upstream stage behind it."""

from __future__ import annotations

import dataclasses

from cotdistill.methods import REGISTRY
from recipe_fixtures import lab_inputs, tokenizer  # noqa: F401  (fixtures)


def _stages(inputs, **params):
    return {s.name: s for s in REGISTRY["combined"].build(inputs, params)}


def _selection_of(inputs):
    """A selection as MoRSD's stage hands it over: some correct teacher CoTs (every other one)."""
    correct = [r for r in inputs.rationales if r.correct is True and r.origin == "teacher"]
    return dataclasses.replace(inputs, selected=correct[::2], student_rationales=[
        r.model_copy(update={"id": f"{r.id}#student", "origin": "student"}) for r in inputs.rationales[:6]])


def test_the_combined_recipe_declares_the_needs_of_its_parts():
    needs = REGISTRY["combined"].needs_for
    assert set(needs({})) == {"rationales", "pairs", "student_rationales", "selection"}
    assert "selection" not in needs({"selection": None})  # without MoRSD selection
    assert "student_rationales" not in needs({"coped": None})  # without CoPeD no student samples are drawn
    assert set(needs({"stages": ["sft"]})) == set(needs({}))  # without KRSL the upstream stages stay


def test_stage1_trains_on_the_selection_under_copeds_task_and_weights(lab_inputs):
    inputs = _selection_of(lab_inputs)
    kept = {r.id for r in inputs.selected}
    sft = _stages(inputs)["sft"]
    assert sft.instance_weighting == "coped" and "coped" in sft.extra
    rectified = {r.id for r in inputs.rationales if r.origin == "rectified"}
    assert rectified
    generation = {s.id.removeprefix("coped/gen/") for s in sft.sequences if s.id.startswith("coped/gen/")}
    assert generation == kept | rectified  # CoPeD's generation task: the selected CoTs and the rectified ones
    reviewed = {s.id.removeprefix("coped/status/") for s in sft.sequences if s.id.startswith("coped/status/")}
    students = {r.id for r in inputs.student_rationales}
    assert reviewed <= kept | students and reviewed & students  # the student's own samples, no unselected CoT
    stats = sft.extra["stats"]  # a wrong one is left out only when its question has no selected CoT to revise it
    assert stats["status_correct"] + stats["status_incorrect"] + stats["no_revision"] == len(kept | students)
    # without CoPeD: plain EDIT stage 1 on the same selected CoTs, no instance weighting
    plain = _stages(inputs, coped=None)["sft"]
    assert plain.instance_weighting is None and {s.id for s in plain.sequences} == kept | rectified


def test_krsl_keeps_the_pairs_whose_correct_side_survived_selection(lab_inputs):
    inputs = _selection_of(lab_inputs)
    kept = {r.id for r in inputs.selected}
    krsl = _stages(inputs)["krsl"]
    sides = {s.id.rsplit("/", 1)[0] for s in krsl.sequences}
    by_id = {p.id: p for p in inputs.pairs}
    rectified = {r.id for r in inputs.rationales if r.origin == "rectified"}
    # positive pairs only where the selection kept the teacher's correct CoT; negative pairs (a rectified correct
    # side, which MoRSD does not choose among) all stay
    assert sides and all(by_id[p].chosen.id in kept | rectified for p in sides)
    assert {by_id[p].kind for p in sides} == {"positive", "negative"}
    assert {p.id for p in inputs.pairs if p.kind == "positive" and p.chosen.id not in kept} - sides
    assert krsl.merge_lora_before
    # without selection every dual pair counts, and stage 1 is EDIT's (correct and rectified CoTs)
    unselected = _stages(dataclasses.replace(inputs, selected=None), coped=None)
    edit = {s.name: s for s in REGISTRY["edit"].build(dataclasses.replace(inputs, selected=None), {})}
    assert [s.id for s in unselected["sft"].sequences] == [s.id for s in edit["sft"].sequences]
    assert [s.id for s in unselected["krsl"].sequences] == [s.id for s in edit["krsl"].sequences]
    # without KRSL
    assert list(_stages(inputs, stages=["sft"])) == ["sft"]
