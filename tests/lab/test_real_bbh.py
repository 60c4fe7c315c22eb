"""The scripted teacher parses and solves the real BBH questions of every subtask it covers."""

from __future__ import annotations

from collections import Counter

from cotdistill.data.bbh import load_bbh
from cotdistill.lab import FAMILIES
from cotdistill.lab.teacher import ScriptedTeacher

from lab_testutil import strictly_correct

COVERED = sorted(s for f in FAMILIES.values() for s in f.bbh_subtasks)


def test_every_covered_bbh_question_is_solved(shared_data) -> None:
    examples = load_bbh(subtasks=COVERED)  # the official release's questions
    per_task = Counter(e.task for e in examples)
    assert set(per_task) == set(COVERED), per_task
    solved = ScriptedTeacher(seed=1).solve(examples)
    wrong = [(e.id, e.answer, r[0].text[-60:]) for e, r in zip(examples, solved)
             if not strictly_correct(r[0].text, e)]
    assert not wrong, wrong[:5]
