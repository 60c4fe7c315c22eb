"""`python -m cotdistill.lab`: a dataset of questions and scripted CoTs, written as validated JSONL records."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cotdistill.errors import CotdistillError
from cotdistill.lab.cli import _knobs, main
from cotdistill.records import DualPair, Example, Rationale, read_jsonl


def test_lab_command_writes_examples_rationales_and_pairs(tmp_path: Path) -> None:
    out = tmp_path / "lab"
    assert main(["--out", str(out), "--families", "web_of_lies", "navigate", "--n", "40", "--test-n", "10",
                 "--mistake-rate", "0.5", "--samples", "2", "--difficulty", "people=4", "--pairs"]) == 0
    examples = read_jsonl(out / "examples.jsonl", Example)
    rationales = read_jsonl(out / "rationales.jsonl", Rationale)
    pairs = read_jsonl(out / "pairs.jsonl", DualPair)
    assert len(examples) == 100 and {e.split for e in examples} == {"train", "test"}
    teacher = [r for r in rationales if r.origin == "teacher"]
    assert len(teacher) == 200
    lies = [e for e in examples if e.task == "web_of_lies"]
    assert all(e.question.count(" says ") == 3 for e in lies)  # people=4: three statements about others
    assert 0.3 < sum(not r.correct for r in teacher) / len(teacher) < 0.7
    train_ids = {e.id for e in examples if e.split == "train"}
    assert len(pairs) == sum(r.example_id in train_ids for r in teacher)
    assert len(rationales) == len(teacher) + len(pairs)  # each pair's rectified or corrupted CoT is a rationale
    assert all(p.chosen.correct and not p.rejected.correct for p in pairs)
    assert {p.kind for p in pairs} == {"positive", "negative"}


def test_module_entry_point_and_errors(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "cotdistill.lab", "--out", str(tmp_path), "--families",
                           "boolean_expressions", "--n", "5", "--hard"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "wrote 5 examples, 5 rationales" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "cotdistill.lab", "--out", str(tmp_path), "--difficulty",
                          "wings=3"], capture_output=True, text=True)
    assert bad.returncode == 2 and "no lab family has a difficulty knob 'wings'" in bad.stderr


def test_difficulty_knobs() -> None:
    assert _knobs(["tracking_shuffled_objects.objects=5", "people=7"]) == {
        "tracking_shuffled_objects": {"objects": 5}, "web_of_lies": {"people": 7}}
    with pytest.raises(CotdistillError):
        _knobs(["web_of_lies.objects=5"])
