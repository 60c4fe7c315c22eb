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


def test_scripted_teacher_rectifies_and_corrupts_imported_codex_cots_on_real_bbh(shared_data, tmp_path) -> None:
    """The scripted alternative teacher of the BBH study: after `cotdistill import` of code-davinci-002's CoTs,
    `teach --backend scripted` rectifies every wrong Codex CoT and corrupts the right ones it can, on the official
    questions; a question no single mistake can flip (a walk ending far from home) is a failed item, not an error."""
    import json

    from cotdistill.records import DualPair, Rationale, read_jsonl
    from conftest import run_cli

    run_dir = tmp_path / "teach"
    releases = [str(shared_data / "bbh" / "codex-cot" / f"{t}_few_shot_template_0-255000.json")
                for t in ("navigate", "web_of_lies")]
    assert run_cli("import", *releases, "--model", "code-davinci-002", "--run-dir", str(run_dir)).returncode == 0
    result = run_cli("teach", "--backend", "scripted", "--data", "bbh", "--subtasks", "navigate,web_of_lies",
                     "--limit-per-task", "30", "--stages", "rectify,corrupt,pair", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((run_dir / "teach_report.json").read_text())
    rationales = read_jsonl(run_dir / "rationales.jsonl", Rationale)
    codex = {r.id: r for r in rationales if r.origin == "teacher"}
    assert len(codex) == 60 and {r.model for r in codex.values()} == {"code-davinci-002"}
    wrong = [r for r in codex.values() if not r.correct]
    assert wrong and report["grade"]["failed"] == len(wrong)
    rectified = [r for r in rationales if r.origin == "rectified"]
    assert report["rectify"]["succeeded"] == len(rectified) == len(wrong)  # the gold path always exists
    assert all(r.correct and not codex[r.parent].correct for r in rectified)
    corrupted = [r for r in rationales if r.origin == "corrupted"]
    assert all(not r.correct and codex[r.parent].correct for r in corrupted)
    failed = [json.loads(line)["id"] for line in
              (next((run_dir / "stages").glob("corrupt-*")) / "failed.jsonl").read_text().splitlines()]
    assert len(corrupted) + len(failed) == len(codex) - len(wrong)
    assert all(codex[i].example_id.startswith("bbh/navigate/") for i in failed)  # only walks can be unflippable
    pairs = read_jsonl(run_dir / "pairs.jsonl", DualPair)
    assert len(pairs) == len(rectified) + len(corrupted)
    # the scripted teacher writes its own path: key spans mark, sentence by sentence, where it departs from Codex's
    assert all(p.chosen.key_spans if p.kind == "negative" else p.rejected.key_spans for p in pairs)
