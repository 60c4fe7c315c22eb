"""`cotdistill import`: teacher CoTs a user already has, matched, graded and written as `teach` writes them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from cotdistill.data.bbh import load_bbh
from cotdistill.errors import CotdistillError, RecordError
from cotdistill.lab.teacher import ScriptedTeacher
from cotdistill.records import DualPair, Rationale, read_jsonl
from cotdistill.teachers.importing import import_teacher_outputs, question_of_release_input
from cotdistill.teachers.stages import run_teach

from conftest import run_cli


def test_import_of_the_releases_codex_cots_grades_4816_of_6511(shared_data, tmp_path):
    run_dir = tmp_path / "teach"
    result = run_cli("import", str(shared_data / "bbh" / "codex-cot"), "--model", "code-davinci-002",
                     "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert "4,816 of 6,511 imported rationales graded correct (strict rule)" in result.stdout
    graded = read_jsonl(run_dir / "imported" / "teacher.jsonl", Rationale)
    assert len(graded) == 6511 and len({r.example_id for r in graded}) == 6511  # every official question once
    assert {r.model for r in graded} == {"code-davinci-002"} and {r.origin for r in graded} == {"teacher"}
    # per task, the same accuracy as the release's own *_eval_metrics.jsonl (the official rule)
    per_task: dict[str, list[bool]] = {}
    for r in graded:
        per_task.setdefault(r.example_id.split("/")[1], []).append(bool(r.correct))
    for task, marks in per_task.items():
        metrics = shared_data / "bbh" / "codex-cot" / f"{task}_few_shot_template_0-255000_eval_metrics.jsonl"
        official = json.loads(metrics.read_text().splitlines()[0])["accuracy"]
        assert 100 * sum(marks) / len(marks) == pytest.approx(official, abs=1e-6), task
        assert f"| {task} | {len(marks)} | {sum(marks)} |" in result.stdout
    # the teach layout holds the training split only: test-question CoTs must never train a student
    written = read_jsonl(run_dir / "rationales.jsonl", Rationale)
    train_ids = {e.id for e in load_bbh(split="train")}
    assert len(written) == 5209 and {r.example_id for r in written} == train_ids
    assert json.loads((run_dir / "teach_report.json").read_text())["grade"]["succeeded"] == \
        sum(bool(r.correct) for r in written)


def test_release_input_loses_its_three_shot_prompt():
    text = ("Task.\n\nQ: first shot?\nA: Let's think step by step.\nSo the answer is No.\n\n"
            "Q: Is it real?\nOptions:\n- Yes\n- No\nA: Let's think step by step.")
    assert question_of_release_input(text) == "Is it real?\nOptions:\n- Yes\n- No"


def _small_bbh(folder: Path) -> list:
    rows = [{"input": f"If you follow these instructions, do you return to the starting point? Take {i} steps. "
                      f"Take {i} steps backward.\nOptions:\n- Yes\n- No", "target": "Yes"} for i in range(1, 11)]
    (folder / "tasks").mkdir(parents=True)
    (folder / "tasks" / "navigate.json").write_text(json.dumps({"examples": rows}))
    return load_bbh(["navigate"], path=str(folder))


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_by_id_or_question_with_a_field_map(tmp_path):
    examples = _small_bbh(tmp_path / "bbh")
    rows = [{"qid": examples[0].id, "cot": "We go and come back. So the answer is Yes."},
            {"qid": examples[0].id, "cot": "We drift away. So the answer is No."},
            {"text": examples[1].question, "cot": "Back home. So the answer is Yes."}]
    path = _jsonl(tmp_path / "mine.jsonl", rows)
    graded, _ = import_teacher_outputs(tmp_path / "run", [path], examples, "my-teacher", split=None,
                                       fields={"id": "qid", "question": "text", "rationale": "cot"})
    assert [(r.example_id, r.sample_index, r.correct) for r in graded] == [
        (examples[0].id, 0, True), (examples[0].id, 1, False), (examples[1].id, 0, True)]
    assert [r.id for r in graded][:2] == [f"{examples[0].id}#my-teacher/0", f"{examples[0].id}#my-teacher/1"]
    assert len(read_jsonl(tmp_path / "run" / "rationales.jsonl", Rationale)) == 3


def test_malformed_or_unmatched_lines_stop_before_anything_is_written(tmp_path):
    examples = _small_bbh(tmp_path / "bbh")
    good = {"id": examples[0].id, "rationale": "So the answer is Yes."}
    cases = {
        "missing rationale": ([good, {"id": examples[1].id}], RecordError, r"mine\.jsonl:2: field 'rationale': missing"),
        "unmatched": ([good, {"question": "Who?", "rationale": "x"}], RecordError,
                      r"mine\.jsonl:2: field 'question': matches no example"),
    }
    for rows, error, pattern in cases.values():
        with pytest.raises(error, match=pattern):
            import_teacher_outputs(tmp_path / "run", [_jsonl(tmp_path / "mine.jsonl", rows)], examples, "t")
        assert not (tmp_path / "run").exists()
    release = tmp_path / "navigate_outputs.json"
    release.write_text(json.dumps({"outputs": [{"input": "Q: Who?\nA: Let's think.", "prediction": "x"}]}))
    with pytest.raises(CotdistillError, match=r"navigate_outputs\.json: outputs\[0\]: field 'input': matches no"):
        import_teacher_outputs(tmp_path / "run", [release], examples, "t")
    assert not (tmp_path / "run").exists()
    rows = [good, {"question": "Who?", "rationale": "x"}, {"question": "Where?", "rationale": "y"}]
    graded, imported = import_teacher_outputs(tmp_path / "run", [_jsonl(tmp_path / "mine.jsonl", rows)], examples,
                                              "t", skip_unmatched=True, split=None)
    assert len(graded) == 1 and [s["line"] for s in imported.skipped] == [2, 3]
    assert len((tmp_path / "run" / "imported" / "skipped.jsonl").read_text().splitlines()) == 2


def test_teach_continues_from_imported_cots_with_a_live_teacher(tmp_path):
    examples = _small_bbh(tmp_path / "bbh")  # every walk returns home: the gold is Yes
    rows = [{"id": e.id, "rationale": f"Walking. So the answer is {'No' if i % 3 == 0 else 'Yes'}."}
            for i, e in enumerate(examples)]
    run_dir = tmp_path / "run"
    import_teacher_outputs(run_dir, [_jsonl(tmp_path / "mine.jsonl", rows)], examples, "imported-teacher", split=None)
    reports = run_teach(run_dir, examples, ScriptedTeacher(seed=0), stages=("rectify", "corrupt", "pair"))
    stages = sorted(p.name.split("-")[0] for p in (run_dir / "stages").iterdir() if not p.name.startswith("."))
    assert stages == ["corrupt", "grade", "imported", "pair", "rectify"]  # no generate: the import stood in
    wrong = sum(i % 3 == 0 for i in range(len(examples)))
    assert reports["grade"].failed == wrong and reports["rectify"].succeeded == wrong
    pairs = read_jsonl(run_dir / "pairs.jsonl", DualPair)
    assert Counter(p.kind for p in pairs) == {"negative": wrong, "positive": len(examples) - wrong}
    assert all(p.rejected.model == "imported-teacher" for p in pairs if p.kind == "negative")


def test_import_with_test_split_writes_codex_test_answers_for_the_teacher_row(shared_data, tmp_path):
    from cotdistill.config import DataConfig
    from cotdistill.data import load_examples
    from cotdistill.pipeline import RunFolder
    from cotdistill.records import write_jsonl
    from cotdistill.study import teacher_answers_stage

    run_dir = tmp_path / "teach"
    release = shared_data / "bbh" / "codex-cot" / "navigate_few_shot_template_0-255000.json"
    result = run_cli("import", str(release), "--model", "code-davinci-002", "--run-dir", str(run_dir),
                     "--test-split", "test")
    assert result.returncode == 0, result.stderr
    test = [e for e in load_bbh(["navigate"]) if e.split == "test"]
    answers = read_jsonl(run_dir / "test_rationales.jsonl", Rationale)
    assert [r.example_id for r in answers] == [e.id for e in test]  # every test question, once, in order
    # the test CoTs never reach the training layout
    assert not {r.example_id for r in read_jsonl(run_dir / "rationales.jsonl", Rationale)} & {e.id for e in test}
    right = sum(bool(r.correct) for r in answers)
    assert f"{len(answers):,} test questions, {right:,} correct" in result.stdout
    # a study scores them as the teacher row: the same accuracy as the import's own grading
    examples_file = tmp_path / "examples.jsonl"
    write_jsonl(examples_file, load_examples(DataConfig(source="bbh", subtasks=["navigate"], split=None)))
    rows = [json.loads(line) for line in
            teacher_answers_stage(RunFolder(tmp_path / "run"), run_dir / "test_rationales.jsonl", examples_file,
                                  "test").read_text().splitlines()]
    assert len(rows) == len(test) and sum(r["strict_correct"] for r in rows) == right


def test_import_refuses_a_test_split_equal_to_the_training_split(shared_data, tmp_path):
    release = shared_data / "bbh" / "codex-cot" / "navigate_few_shot_template_0-255000.json"
    result = run_cli("import", str(release), "--model", "m", "--run-dir", str(tmp_path / "t"), "--test-split", "train")
    assert result.returncode == 2 and "apart from the training split" in result.stderr
    assert not (tmp_path / "t").exists()
