"""Rectified and corrupted CoTs are first-class rationales: every producer (`cotdistill teach`, `cotdistill lab
--pairs`, the study's lab teacher stage) writes them into the rationale set recipes receive, with their origin
and parent, and each recipe picks what it wants by origin: the data of the recipes that never used them is
unchanged, CoPeD and DPO change as intended."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cotdistill.config import LabData, LabTeacher
from cotdistill.lab import ScriptedTeacher, generate_examples
from cotdistill.methods import REGISTRY
from cotdistill.pipeline import RunFolder
from cotdistill.records import DualPair, Rationale, read_jsonl
from recipe_fixtures import lab_inputs, tokenizer  # noqa: F401  (fixtures)


def assert_first_class(rationales: list[Rationale], pairs: list[DualPair]) -> None:
    """Every pair side is a rationale of the set; rectified CoTs hang off a wrong teacher CoT, corrupted ones off
    a correct one, and both are graded."""
    by_id = {r.id: r for r in rationales}
    assert len(by_id) == len(rationales)  # each CoT once
    for pair in pairs:
        assert by_id[pair.chosen.id] == pair.chosen and by_id[pair.rejected.id] == pair.rejected
    rectified = [r for r in rationales if r.origin == "rectified"]
    corrupted = [r for r in rationales if r.origin == "corrupted"]
    assert rectified and corrupted
    for r in rectified:
        parent = by_id[r.parent]
        assert r.correct is True and parent.origin == "teacher" and parent.correct is False
    for r in corrupted:
        parent = by_id[r.parent]
        assert r.correct is False and parent.origin == "teacher" and parent.correct is True


def test_the_study_lab_teacher_stage_writes_rectified_and_corrupted_rationales(tmp_path: Path) -> None:
    from cotdistill.study import lab_examples_stage, lab_teacher_stage

    run = RunFolder(tmp_path)
    examples = lab_examples_stage(run, LabData(train_n=30, test_n=5, ood=False, difficulty={"web_of_lies": {"people": 3}}))
    folder = lab_teacher_stage(run, LabTeacher(mistake_rate=0.3, samples=2), examples)
    rationales = read_jsonl(folder / "rationales.jsonl", Rationale)
    pairs = read_jsonl(folder / "pairs.jsonl", DualPair)
    assert_first_class(rationales, pairs)
    teacher = [r for r in rationales if r.origin == "teacher"]
    assert len(teacher) == 60 and len(rationales) == 60 + len(pairs)  # every teacher CoT is in one pair


def test_cotdistill_lab_with_pairs_writes_them_too(tmp_path: Path) -> None:
    from cotdistill.lab.cli import main

    assert main(["--out", str(tmp_path), "--families", "navigate", "--n", "20", "--test-n", "5",
                 "--mistake-rate", "0.4", "--pairs"]) == 0
    assert_first_class(read_jsonl(tmp_path / "rationales.jsonl", Rationale),
                       read_jsonl(tmp_path / "pairs.jsonl", DualPair))


def test_cotdistill_teach_writes_them_too(tmp_path: Path) -> None:
    from cotdistill.teachers.stages import TeachSettings, run_teach

    examples = generate_examples("navigate", 8, 0) + generate_examples("object_counting", 8, 0)
    run_teach(tmp_path, examples, ScriptedTeacher(mistake_rate=0.4, seed=1), TeachSettings(n=2))
    rationales = read_jsonl(tmp_path / "rationales.jsonl", Rationale)
    assert_first_class(rationales, read_jsonl(tmp_path / "pairs.jsonl", DualPair))
    assert sum(r.origin == "teacher" for r in rationales) == 32


# ---- what each recipe makes of them -----------------------------------------------------------------------


def _teacher_only(inputs):
    return dataclasses.replace(inputs, rationales=[r for r in inputs.rationales if r.origin == "teacher"])


def _compiled(name: str, inputs, params: dict | None = None):
    return [(st.name, [(s.id, s.prompt_ids, s.target_ids, s.target_weights, s.target_segments) for s in st.sequences],
             st.extra.get("rows")) for st in REGISTRY[name].build(inputs, params or {})]


@pytest.mark.parametrize("name,params", [
    ("std_cot", {}), ("std_cot", {"volume": "repeat"}), ("std_cot", {"volume": "dual"}), ("answer_only", {}),
    ("mt_cot", {}), ("step_by_step", {}), ("scott", {}), ("morsd", {}),
])
def test_recipes_that_never_trained_on_them_compile_the_same_data(lab_inputs, name, params) -> None:
    """Std-CoT, MoRSD and the baselines keep training on the teacher's own CoTs (SCOTT's corruptions come from
    the pairs, as before)."""
    assert {r.origin for r in lab_inputs.rationales} == {"teacher", "rectified", "corrupted"}
    assert _compiled(name, lab_inputs, params) == _compiled(name, _teacher_only(lab_inputs), params)


def test_std_cot_trains_on_teacher_origin_correct_cots_only(lab_inputs) -> None:
    [stage] = REGISTRY["std_cot"].build(lab_inputs, {})
    by_id = {r.id: r for r in lab_inputs.rationales}
    assert {s.id for s in stage.sequences} == {r.id for r in lab_inputs.rationales
                                               if r.origin == "teacher" and r.correct}
    assert all(by_id[s.id].origin == "teacher" for s in stage.sequences)


def test_morsd_selection_considers_the_teachers_own_cots_only(lab_inputs) -> None:
    from cotdistill.select import SelectionConfig, candidate_rationales

    kept, rows = candidate_rationales(lab_inputs.rationales, SelectionConfig())
    assert kept and {r.origin for r in kept} == {"teacher"}
    assert set(rows) | {r.id for r in kept} == {r.id for r in lab_inputs.rationales}  # each input accounted for
    assert {rows[r.id]["reason"] for r in lab_inputs.rationales if r.origin != "teacher"} == {"origin"}


def test_coped_revises_each_wrong_teacher_cot_with_its_own_rectification(lab_inputs) -> None:
    [stage] = REGISTRY["coped"].build(lab_inputs, {})
    seqs = {s.id: s for s in stage.sequences}
    rectified = {r.parent: r for r in lab_inputs.rationales if r.origin == "rectified"}
    wrong = [r for r in lab_inputs.rationales if r.origin == "teacher" and r.correct is False]
    assert wrong and stage.extra["counts"]["no_revision"] == 0
    tok = lab_inputs.tokenizer
    for r in wrong:
        target = tok.decode(seqs[f"coped/status/{r.id}"].target_ids, skip_special_tokens=True).strip()
        assert target == rectified[r.id].text.strip()
    # generation: D+ and D-+ (correct teacher and rectified CoTs); reviewed: what the teacher wrote itself
    generated = {s.id.split("/", 2)[2] for s in stage.sequences if s.id.startswith("coped/gen/")}
    assert generated == {r.id for r in lab_inputs.rationales if r.correct and r.origin in ("teacher", "rectified")}
    reviewed = {s.id.split("/", 2)[2] for s in stage.sequences if s.id.startswith("coped/status/")}
    assert reviewed == {r.id for r in lab_inputs.rationales if r.origin == "teacher"}


def test_edit_stage1_is_d_plus_then_d_minus_plus_from_the_rationale_set(lab_inputs) -> None:
    sft = REGISTRY["edit"].build(lab_inputs, {"stages": ["sft"]})[0]
    expected = [r.id for r in lab_inputs.rationales if r.origin == "teacher" and r.correct]
    expected += [r.id for r in lab_inputs.rationales if r.origin == "rectified"]
    assert [s.id for s in sft.sequences] == expected


def test_edit_refuses_pairs_whose_rectified_cots_are_missing_from_the_rationales(lab_inputs) -> None:
    """An old run folder (rectified CoTs only inside pairs) would silently lose D-+ from stage 1."""
    from cotdistill.errors import CotdistillError

    with pytest.raises(CotdistillError, match="rectified CoT.*not among the rationales"):
        REGISTRY["edit"].build(_teacher_only(lab_inputs), {})


def test_the_teacher_row_still_scores_the_teachers_own_first_sample(lab_inputs) -> None:
    from cotdistill.methods import teacher_accuracy

    everything = teacher_accuracy(lab_inputs.examples, lab_inputs.rationales)
    assert everything == teacher_accuracy(lab_inputs.examples, _teacher_only(lab_inputs).rationales)
    assert everything["missing"] == 0
