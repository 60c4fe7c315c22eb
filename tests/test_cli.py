import json

import pytest

from conftest import run_cli


def test_help_lists_the_stages():
    result = run_cli("--help")
    assert result.returncode == 0
    for stage in ("run", "data", "eval"):
        assert f"    {stage} " in result.stdout


def test_data_lists_bbh_subtasks_and_bbsub_counts():
    result = run_cli("data")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "big-bench" in line]
    assert len(rows) >= 24
    assert "BB-sub: 61 tasks, 4542 examples" in result.stdout


@pytest.fixture
def bad_inputs(tmp_path):
    good = {"question": "1 + 1 =", "answer": "2", "answer_format": "number"}
    malformed = tmp_path / "malformed.jsonl"
    malformed.write_text(json.dumps(good) + "\n{oops\n")
    missing = tmp_path / "missing.jsonl"
    missing.write_text(json.dumps(good) + "\n" + json.dumps({"question": "2 + 2 ="}) + "\n")
    return {
        "malformed": (["--data-file", str(malformed)], r"malformed.jsonl:2: invalid JSON"),
        "missing field": (["--data-file", str(missing)], r"missing.jsonl:2: field 'answer': missing"),
        "unknown subtask": (["--subtasks", "navigate,not_a_task"], "unknown BBH subtask 'not_a_task'"),
        "model path": (["--model", str(tmp_path / "no_such_model")], "model path '.*no_such_model' does not exist"),
    }


@pytest.mark.parametrize("case", ["malformed", "missing field", "unknown subtask", "model path"])
def test_bad_input_is_one_line_nonzero_and_writes_nothing(tmp_path, bad_inputs, case):
    import re

    args, pattern = bad_inputs[case]
    run_dir = tmp_path / "run"
    result = run_cli("eval", "--run-dir", str(run_dir), "--limit-per-task", "1", *args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert re.search(pattern, lines[-1]), result.stderr
    assert lines[-1].startswith("cotdistill: error: ")
    assert "Traceback" not in result.stderr
    assert not run_dir.exists()


@pytest.mark.slow
def test_eval_prints_per_subtask_accuracy_and_reuses_finished_stages(tmp_path, smollm2_dir):
    args = ["eval", "--model", str(smollm2_dir), "--subtasks", "navigate,object_counting", "--limit-per-task", "2",
            "--max-new-tokens", "16", "--run-dir", str(tmp_path / "run")]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "| bbh/navigate | 2 |" in first.stdout and "| bbh/object_counting | 2 |" in first.stdout
    assert "| task | n | strict | flexible |" in first.stdout
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["benchmarks"]["bbh"]["n"] == 4
    assert len((tmp_path / "run" / "predictions.jsonl").read_text().splitlines()) == 4
    environment = json.loads((tmp_path / "run" / "environment.json").read_text())  # what the numbers came from
    assert environment["packages"]["transformers"] and environment["processor"]["model"]
    second = run_cli(*args)
    assert second.returncode == 0
    assert "[eval] up to date" in second.stderr
