import json

import pytest

from conftest import run_cli


def test_help_lists_the_stages():
    result = run_cli("--help")
    assert result.returncode == 0
    for stage in ("run", "data", "eval"):
        assert f"    {stage} " in result.stdout


def test_data_lists_every_benchmark_with_train_and_test_counts(shared_data):
    result = run_cli("data", "--data-root", str(shared_data), "-v")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Official BBH (BIG-Bench Hard; train:test 4:1 per task, seeded): 27 tasks, 6,511 questions " \
           "(5,209 train / 1,302 test)" in out
    assert "| navigate | 200 | 50 |" in out and "| snarks | 142 | 36 |" in out
    assert "AGIEval (8 English multiple-choice subsets; all test): 8 tasks, 2,546 questions" in out
    assert "| ARC-Easy | 0 | 2376 |" in out and "ARC-Challenge: not found." in out
    assert "BB-sub (" in out  # counted when BIG-bench is in the cache, else how it is fetched


def test_data_without_data_explains_how_to_get_each_source(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "COTDISTILL_CACHE": str(tmp_path / "cache")}
    env.pop("COTDISTILL_DATA", None)
    result = subprocess.run([sys.executable, "-m", "cotdistill", "data"], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "not fetched yet: the first `data.source=bbh` run downloads the official release" in result.stdout
    assert "no AGIEval data: AGIEval: download data/v1/<subset>.jsonl" in result.stdout
    assert "no ARC data: ARC: put EDIT's ARC-Easy-Test.json" in result.stdout
    assert "bigbench==1.0.0 sdist (358 MB)" in result.stdout
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


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
        "unknown subtask": (["--subtasks", "navigate,not_a_task"], "unknown BBH task 'not_a_task'"),
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
