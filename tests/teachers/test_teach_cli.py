"""`cotdistill teach` from the command line: the scripted teacher end to end, clear errors for missing
settings, and an import-guarded vLLM backend that says how to install it."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
from teach_testutil import choice_examples

from cotdistill.cli import main
from cotdistill.errors import CotdistillError
from cotdistill.lab.generate import generate_examples
from cotdistill.records import write_jsonl


def test_teach_with_the_scripted_teacher_prints_each_stage_and_writes_a_report(tmp_path, capsys):
    data = tmp_path / "lab.jsonl"
    write_jsonl(data, generate_examples("navigate", 8, 0))
    code = main(["teach", "--backend", "scripted", "--data", "file", "--data-file", str(data), "--n", "2",
                 "--run-dir", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 0
    for stage in ("generate", "grade", "rectify", "corrupt", "pair"):
        assert f"[{stage}] succeeded" in out
    report = json.loads((tmp_path / "run" / "teach_report.json").read_text())
    assert report["generate"]["succeeded"] == 16


@pytest.mark.parametrize("args, message", [
    (["--backend", "openai", "--model", "m"], "needs --base-url"),
    (["--backend", "openai", "--base-url", "http://127.0.0.1:9/v1"], "needs --model"),
    (["--stages", "generate,distil", "--backend", "scripted"], "unknown teacher stages"),
])
def test_missing_or_wrong_settings_fail_with_one_clear_line(tmp_path, capsys, args, message):
    data = tmp_path / "q.jsonl"
    write_jsonl(data, choice_examples(2))
    code = main(["teach", "--data", "file", "--data-file", str(data), "--run-dir", str(tmp_path / "run"), *args])
    assert code == 2 and message in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_the_vllm_backend_without_vllm_says_how_to_install_it():
    from cotdistill.teachers.vllm import VllmBackend

    with pytest.raises(CotdistillError, match=r"pip install 'cotdistill\[vllm\]'"):
        VllmBackend("some/model")
    assert "vllm" not in sys.modules
