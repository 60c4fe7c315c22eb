"""The grader against published numbers: code-davinci-002's BBH chain-of-thought outputs and their official scores.

Reads the BBH release's Codex outputs from the shared data folder ($COTDISTILL_DATA, or shared/data above the
checkout); without them every test here skips and says why. The rules and the Example built for each output
live in bench/grading_calibration.py, which prints the table in docs/grading.md.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from cotdistill.grading import extract_flexible, extract_strict


def _calibration() -> ModuleType:
    path = Path(__file__).parents[1] / "bench" / "grading_calibration.py"
    spec = importlib.util.spec_from_file_location("bench_grading_calibration", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


calibration = _calibration()


@pytest.fixture(scope="module")
def codex_dir() -> Path:
    root = calibration.default_dir()
    if root is None:
        pytest.skip("Codex's BBH outputs (shared/data/bbh/codex-cot) not found: set COTDISTILL_DATA to the data folder")
    return root


@pytest.fixture(scope="module")
def scored(codex_dir: Path) -> list:
    return calibration.score(codex_dir)


@pytest.fixture(scope="module")
def counts(codex_dir: Path, scored: list) -> dict:
    return calibration.per_task(codex_dir, scored)


def test_all_27_tasks_and_every_output_are_read(counts: dict, codex_dir: Path) -> None:
    tasks = {p.name[: -len(calibration.METRICS_SUFFIX)] for p in codex_dir.glob(f"*{calibration.METRICS_SUFFIX}")}
    assert set(counts) == tasks and len(tasks) == 27
    assert all(row.n > 0 for row in counts.values())


def test_strict_reproduces_the_published_accuracy_of_every_task(counts: dict) -> None:
    for task, row in counts.items():
        assert row.strict == row.published, (task, row)
    assert sum(row.strict for row in counts.values()) == sum(row.published for row in counts.values())


def test_the_official_rule_as_documented_reproduces_the_published_numbers(counts: dict) -> None:
    # Guards the reference itself: if this failed, "strict = official" would mean nothing.
    assert {task: row.official for task, row in counts.items()} == {task: row.published for task, row in counts.items()}


def test_strict_agrees_with_the_official_rule_on_every_single_output(scored: list) -> None:
    # Equal counts could hide errors that cancel out; per output, our normalisation must add no credit here.
    disagree = [(s.output.task, s.output.index, s.output.prediction[-80:]) for s in scored if s.strict != s.official]
    assert disagree == []


def test_flexible_credits_only_outputs_that_state_no_answer(scored: list) -> None:
    gained = [s for s in scored if s.flexible and not s.strict]
    for s in gained:
        assert "the answer is" not in s.output.prediction.lower(), (s.output.task, s.output.index)
    assert all(s.flexible for s in scored if s.strict)  # the fallback never takes a right answer away


def test_flexible_keeps_hedged_hyperbaton_answers_wrong(scored: list, counts: dict) -> None:
    # Codex ends many hyperbaton outputs with "So the answer is (A) and (B)."; reading the last "(B)" in the
    # reasoning instead scored 92.0% where the official score is 66.4%.
    hyperbaton = counts["hyperbaton"]
    assert hyperbaton.flexible == hyperbaton.published
    hedges = [s for s in scored if s.output.task == "hyperbaton" and s.output.prediction.endswith("(A) and (B).")]
    assert hedges and not any(s.flexible for s in hedges)


def test_lm_eval_rule_loses_outputs_only_by_its_documented_causes(scored: list) -> None:
    differ = [s for s in scored if s.lm_eval != s.official]
    assert all(s.official and not s.lm_eval for s in differ)  # it never credits what the official rule rejects
    causes = {(s.output.task, s.output.index): calibration.lm_eval_loss_cause(s.output.prediction) for s in differ}
    assert None not in causes.values(), causes


def test_lm_eval_rule_on_its_own_terms() -> None:
    read = calibration.lm_eval_cot_fewshot_answer
    assert read("Hence (B) is right. So the answer is (B).") == "(B)"
    assert read("So the answer is ] ]") == "]"  # the regex always drops the line's last character
    assert read("So the answer is (Q).") == ""  # generation stops at any capital Q, leaving "(" to drop
    assert read("So the answer is (A).\n\nQ: next. So the answer is (B).") == "(A)"
    assert read("The answer is (B).") == "[invalid]"  # lower-case "the" only


def test_calibration_examples_fit_the_grader(codex_dir: Path) -> None:
    # A hyperbaton question parsed from a real prompt: the few-shot exemplars are dropped, both options kept.
    first = next(o for o in calibration.codex_outputs(codex_dir) if o.task == "hyperbaton")
    example = calibration.example_for(first.task, first.index, first.prompt, first.target)
    assert example.question.startswith("Which sentence has the correct adjective order:")
    assert "Let's think step by step" not in example.question and len(example.choices) == 2
    assert extract_strict(first.prediction, example) == extract_flexible(first.prediction, example)
