"""The teacher stages on the lab's scripted teacher (exact, fast) and on a prompted teacher over a loopback
server: counts add up, dual pairs are well-formed, finished stages are reused, interrupted ones resume,
items that never succeed are reported as failed, and corruption prompts carry the data's own pairs."""

from __future__ import annotations

import json

import pytest
from teach_testutil import choice_examples, http_teacher

from cotdistill.lab.generate import generate_examples
from cotdistill.lab.teacher import ScriptedTeacher
from cotdistill.records import DualPair, Rationale, read_jsonl
from cotdistill.teachers.base import Teacher
from cotdistill.teachers.stages import TeachSettings, generate_stage, run_teach
from cotdistill.teachers.testing import FaultServer


def _lab_examples():
    return generate_examples("navigate", 6, 0) + generate_examples("object_counting", 6, 0)


def _stage_file(run, stage: str, name: str):
    return next((run / "stages").glob(f"{stage}-*")) / name


def test_the_scripted_teacher_satisfies_the_protocol():
    assert isinstance(ScriptedTeacher(), Teacher)


def test_the_chain_counts_add_up_and_pairs_join_a_right_and_a_wrong_cot_of_one_question(tmp_path):
    examples = _lab_examples()
    reports = run_teach(tmp_path, examples, ScriptedTeacher(mistake_rate=0.4, seed=1), TeachSettings(n=2))
    gen, grade, rect, corr, pair = (reports[s] for s in ("generate", "grade", "rectify", "corrupt", "pair"))
    assert gen.succeeded == 24
    assert grade.succeeded + grade.failed == 24 and grade.failed > 0 and grade.succeeded > 0
    assert rect.succeeded + rect.failed == grade.failed and corr.succeeded + corr.failed == grade.succeeded
    assert pair.details == {"d_plus_dual": corr.succeeded, "d_minus_dual": rect.succeeded}
    pairs = read_jsonl(_stage_file(tmp_path, "pair", "dual.jsonl"), DualPair)
    assert len(pairs) == pair.succeeded
    for p in pairs:
        assert p.chosen.correct is True and p.rejected.correct is False
        assert p.chosen.example_id == p.rejected.example_id == p.example_id
        wrong_from_right = p.kind == "positive" and p.rejected.parent == p.chosen.id
        right_from_wrong = p.kind == "negative" and p.chosen.parent == p.rejected.id
        assert wrong_from_right or right_from_wrong
    summary = json.loads((tmp_path / "teach_report.json").read_text())
    assert set(summary) == {"generate", "grade", "rectify", "corrupt", "pair"}


def test_finished_stages_are_reused_and_a_changed_setting_reruns_only_what_it_touches(tmp_path, capsys):
    examples = _lab_examples()
    teacher = ScriptedTeacher(mistake_rate=0.4, seed=1)
    run_teach(tmp_path, examples, teacher, TeachSettings(n=1))
    capsys.readouterr()
    run_teach(tmp_path, examples, teacher, TeachSettings(n=1, corrupt_budget=5))
    err = capsys.readouterr().err
    for stage in ("generate", "grade", "rectify"):
        assert f"[{stage}] up to date" in err
    assert "[corrupt] running" in err


class _Interrupting:
    """A teacher that stops the process (KeyboardInterrupt) on its k-th `solve` call and counts the calls."""

    def __init__(self, inner, stop_on: int | None):
        self.inner, self.stop_on, self.solved, self.calls = inner, stop_on, [], 0
        self.name = inner.name

    def solve(self, examples, n=1):
        self.calls += 1
        if self.calls == self.stop_on:
            raise KeyboardInterrupt
        self.solved.extend(e.id for e in examples)
        return self.inner.solve(examples, n)


def test_an_interrupted_generate_stage_resumes_where_it_stopped(tmp_path):
    examples = _lab_examples()
    first = _Interrupting(ScriptedTeacher(seed=1), stop_on=3)
    with pytest.raises(KeyboardInterrupt):
        generate_stage(first, examples, tmp_path, n=1, chunk_size=5)
    second = _Interrupting(ScriptedTeacher(seed=1), stop_on=None)
    report = generate_stage(second, examples, tmp_path, n=1, chunk_size=5)
    assert len(first.solved) == 10 and second.solved == [e.id for e in examples[10:]]
    assert report.succeeded == 12
    written = read_jsonl(tmp_path / "teacher.jsonl", Rationale)
    assert [r.example_id for r in written] == [e.id for e in examples]


class _Stubborn(ScriptedTeacher):
    """Never fixes a wrong CoT: rectify hands back the wrong rationale; records the attempts it was given."""

    attempts: list

    def rectify(self, items, *, attempt=0):
        self.attempts.append(attempt)
        return [wrong.model_copy(update={"id": wrong.id + "+rectified", "origin": "rectified", "parent": wrong.id})
                for _, wrong in items]


def test_items_that_never_succeed_are_reported_failed_after_the_budget_not_raised(tmp_path):
    teacher = _Stubborn(mistake_rate=0.5, seed=3)
    teacher.attempts = []
    reports = run_teach(tmp_path, _lab_examples(), teacher, TeachSettings(rectify_budget=3))
    wrong = reports["grade"].failed
    assert wrong > 0 and teacher.attempts == [0, 1, 2]
    assert reports["rectify"].succeeded == 0 and reports["rectify"].failed == wrong
    assert reports["rectify"].retried == 2 * wrong
    failed = _stage_file(tmp_path, "rectify", "failed.jsonl").read_text().splitlines()
    assert len(failed) == wrong
    assert reports["pair"].details["d_minus_dual"] == 0


def test_corruption_prompts_carry_right_and_wrong_pairs_from_the_data(tmp_path):
    examples = choice_examples(12)
    with FaultServer(keep_bodies=True) as server:
        teacher = http_teacher(server.base_url, tmp_path / "cache.sqlite")
        reports = run_teach(tmp_path / "run", examples, teacher, TeachSettings(n=1, corrupt_shots=2))
    rectified = read_jsonl(_stage_file(tmp_path / "run", "rectify", "rectified.jsonl"), Rationale)
    assert rectified and reports["corrupt"].succeeded > 0
    corrupt_prompts = [b["messages"][-1]["content"] for b in server.bodies
                       if "Flawed solution:" in b["messages"][-1]["content"]]
    assert corrupt_prompts
    for prompt in corrupt_prompts:
        demos, item = prompt.rsplit("Question:", 1)
        target = item.split("\n")[0]
        assert demos.count("Correct solution:") == 2 == demos.count("Flawed solution:")
        assert target not in demos  # never the item's own question as a demonstration
        assert any(r.text in prompt for r in rectified)


def test_revision_shows_the_wrong_rationale_and_the_gold_answer(tmp_path):
    examples = choice_examples(2)
    wrong = [Rationale(id=f"{e.id}#student/0", example_id=e.id, text="I guess. Therefore, the answer is (A).",
                       origin="student") for e in examples]
    with FaultServer(keep_bodies=True) as server:
        teacher = http_teacher(server.base_url, None)
        revised = teacher.revise(list(zip(examples, wrong)))
    prompt = server.bodies[0]["messages"][-1]["content"]
    assert "I guess. Therefore, the answer is (A)." in prompt and "The correct answer is (C)" in prompt
    assert [r.parent for r in revised] == [w.id for w in wrong] and all(r.origin == "rectified" for r in revised)
