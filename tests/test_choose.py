"""Choosing a study row on validation: `cotdistill pick` reads validation.json only and names the best row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cotdistill.choose import VALIDATION_MANIFEST, best_on_validation
from cotdistill.errors import CotdistillError
from cotdistill.records import write_jsonl
from cotdistill.report import RunResult, write_manifest

from conftest import run_cli


def _predictions(folder: Path, name: str, right: int, n: int = 10) -> Path:
    rows = [{"id": f"q{i}", "task": "web_of_lies", "strict_correct": i < right, "flexible_correct": i < right}
            for i in range(n)]
    path = folder / f"{name}.jsonl"
    write_jsonl(path, rows)
    return path


def _results(folder: Path, scores: dict[str, list[int]], split: str = "validation") -> list[RunResult]:
    return [RunResult(row, seed, split, _predictions(folder, f"{row}-{seed}-{split}", right))
            for row, per_seed in scores.items() for seed, right in enumerate(per_seed)]


def test_the_row_with_the_best_mean_over_seeds_wins_and_ties_go_to_the_row_listed_first(tmp_path):
    results = _results(tmp_path, {"edit_base": [6, 6], "edit_gamma": [9, 3], "edit_scope": [7, 6],
                                  "edit_cap5": [6, 7]})
    assert best_on_validation(results)[1] == "edit_scope"  # 65% beats 60%; tied with edit_cap5, listed first
    assert best_on_validation(results, among=["edit_b*", "edit_g*"])[1] == "edit_base"
    with pytest.raises(CotdistillError, match="no row matches"):
        best_on_validation(results, among=["dpo*"])
    with pytest.raises(CotdistillError, match="validation results only"):  # a test split never chooses
        best_on_validation(results + _results(tmp_path, {"edit_base": [9]}, split="IND"))


def test_pick_names_the_winner_from_a_report_folder(tmp_path):
    write_manifest(tmp_path / VALIDATION_MANIFEST, _results(tmp_path, {"edit_a": [4], "edit_b": [8]}), baseline=None)
    result = run_cli("pick", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "chosen on validation: edit_b (80.0% strict, mean of 1 seed(s))" in result.stdout
    missing = run_cli("pick", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "study.report_validation" in missing.stderr


@pytest.mark.slow
def test_a_study_with_report_validation_keeps_validation_out_of_the_report(tmp_path):
    """A tiny KRSL search: two EDIT rows with stage 2's epoch chosen on validation; each trained student is also
    evaluated on the validation split, into validation.json only, and `pick` chooses from there."""
    run_dir = tmp_path / "run"
    edit = {"stage1": {"learning_rate": 0.003, "epochs": 1},
            "stage2": {"learning_rate_ratio": 0.1, "epochs": 2, "select_epoch": True}}
    config = {"run_dir": str(run_dir), "study": {
        "lab": {"families": ["web_of_lies"], "train_n": 24, "validation_n": 6, "test_n": 6, "ood": False},
        "teacher": {"mistake_rate": 0.3}, "student": "lab-tiny", "seeds": [0], "baseline": "edit_base",
        "validation": {"max_eval": 6}, "report_validation": True,
        "methods": [{"name": "edit", "label": "edit_base", "params": edit},
                    {"name": "edit", "label": "edit_gamma0.1_first_wrong_step",
                     "params": {**edit, "gamma": 0.1, "negative_scope": "first_wrong_step"}}],
        "train": {"learning_rate": 0.003, "epochs": 1, "batch_size": 8, "save_steps": 100000},
        "eval": {"batch_size": 16, "max_new_tokens": 24}}}
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_cli("run", str(path))
    assert result.returncode == 0, result.stderr[-3000:]
    report = run_dir / "report"
    tested = json.loads((report / "results.json").read_text())["runs"]
    assert {r["split"] for r in tested} == {"IND"}
    assert json.loads((report / "comparison.json").read_text())["strict"]["splits"] == ["IND"]
    validated = json.loads((report / VALIDATION_MANIFEST).read_text())["runs"]
    assert {(r["method"], r["split"]) for r in validated} == {(m["label"], "validation")
                                                             for m in config["study"]["methods"]}
    assert all(r["selected"]["epochs"][0]["stage"] == "krsl" for r in validated)  # stage 2's epoch, on validation
    picked = run_cli("pick", str(report))
    assert picked.returncode == 0 and "chosen on validation: edit_" in picked.stdout
