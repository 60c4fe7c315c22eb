"""The teacher path as a new user walks it (issue 13): a CoT cut at max_tokens is never a successful rewrite,
a copied answer placeholder is no answer, a rerun reports what it asked for itself, every stage shows a
progress line, and Ctrl-C stops a run within seconds, keeping what arrived."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from teach_testutil import choice_examples, http_teacher

from cotdistill.cli import main
from cotdistill.grading import extract_flexible, extract_strict
from cotdistill.records import Example, write_jsonl
from cotdistill.teachers.cache import TeacherCache
from cotdistill.teachers.prompts import TEMPLATE_NAMES, PromptSet
from cotdistill.teachers.stages import TeachSettings, run_teach
from cotdistill.teachers.testing import FaultServer, scripted_reply


def _padded_reply(body: dict) -> str:
    """The scripted answer followed by more words than max_tokens allows: the server reports "length"."""
    return scripted_reply(body) + " And that is all I wanted to add here." * 20


def test_a_cot_cut_at_max_tokens_never_counts_as_rectified_or_corrupted(tmp_path):
    examples = choice_examples(8)
    with FaultServer(reply=_padded_reply) as server:
        # enough tokens for the answer sentence, not for the padding after it
        teacher = http_teacher(server.base_url, tmp_path / "cache.sqlite", max_tokens=40)
        reports = run_teach(tmp_path / "run", examples, teacher, TeachSettings(rectify_budget=2, corrupt_budget=2))
    assert reports["generate"].details["truncated"] == 8
    graded = reports["grade"]
    assert graded.succeeded > 0 and graded.failed > 0  # the answers themselves were readable
    assert reports["rectify"].succeeded == 0 and reports["rectify"].failed == graded.failed
    assert reports["corrupt"].succeeded == 0 and reports["corrupt"].failed == graded.succeeded


def test_no_default_template_offers_a_placeholder_a_model_could_copy():
    values = {"task_description": "d", "question": "q", "task": "t", "answer": "(C)", "rationale": "r",
              "exemplars": "e", "demonstrations": "x"}
    for name in TEMPLATE_NAMES:
        text = "\n".join(m["content"] for m in PromptSet().get(name).render(**values))
        assert "answer is X" not in text and "(X)" not in text, name


def test_a_copied_placeholder_is_no_answer_but_a_real_option_x_still_is():
    four = choice_examples(1)[0]
    assert extract_strict("Step one. The answer is X.", four) is None
    assert extract_strict("Step one. Therefore, the answer is (X).", four) is None
    # flexible grading falls back to the options the text names
    assert extract_flexible("I pick (C). The answer is X.", four) == "(C)"
    unknown_options = four.model_copy(update={"choices": []})  # any letter is a valid option here
    assert extract_strict("The answer is X.", unknown_options) is None
    many = Example(id="m", task="t", question="q", answer="(X)", answer_format="choice",
                   choices=[f"o{i}" for i in range(24)])
    assert extract_strict("The answer is (X).", many) == "(X)"
    free = Example(id="f", task="t", question="q", answer="apple", answer_format="text")
    assert extract_strict("The answer is X.", free) is None


def test_a_rerun_reports_this_runs_requests_not_the_first_runs(tmp_path, capsys):
    data = tmp_path / "q.jsonl"
    write_jsonl(data, choice_examples(6))
    with FaultServer() as server:
        args = ["teach", "--base-url", server.base_url, "--model", "toy", "--data", "file", "--data-file",
                str(data), "--run-dir", str(tmp_path / "run"), "--cache", str(tmp_path / "c.sqlite"),
                "--stages", "generate,grade"]
        assert main(args) == 0
        first = capsys.readouterr()
        assert "requests 6, cached 0" in first.out
        assert "[generate] requests" in first.err  # the stage's progress line
        sent = len(server.log)
        assert main(args) == 0
        again = capsys.readouterr().out
    assert len(server.log) == sent
    assert "requests 6" not in again
    assert "[generate] done in an earlier run (succeeded 6, failed 0); this run: requests 0, cached 0" in again
    report = json.loads((tmp_path / "run" / "teach_report.json").read_text())
    assert report["generate"]["reused"] is True


def test_ctrl_c_stops_a_run_within_seconds_and_the_rerun_resumes_from_its_journal(tmp_path):
    data = tmp_path / "q.jsonl"
    write_jsonl(data, choice_examples(12))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with FaultServer(latency=0.3) as server:
        cmd = [sys.executable, "-m", "cotdistill", "teach", "--base-url", server.base_url, "--model", "toy",
               "--data", "file", "--data-file", str(data), "--concurrency", "2", "--timeout", "60",
               "--stages", "generate", "--run-dir", str(tmp_path / "run"), "--cache", str(tmp_path / "c.sqlite")]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 120
        while len(server.log) < 6:  # a few answered, two more in flight
            assert proc.poll() is None and time.monotonic() < deadline, "the teacher made no progress"
            time.sleep(0.02)
        server.latency = 30.0  # the requests in flight now would keep the process waiting
        asked_at = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        stopped_after = time.monotonic() - asked_at
        assert proc.returncode == 130 and "rerun the same command to resume" in err
        assert stopped_after < 5.0  # ~1-2 s on an idle machine; the margin is for a loaded CI runner
        server.latency = 0.0
        cached = TeacherCache(tmp_path / "c.sqlite")
        answered = len(cached)  # answers that arrived before Ctrl-C were stored
        cached.close()
        assert answered >= 2
        start = len(server.log)
        rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        assert len(server.log) - start == 12 - answered  # only the unanswered questions are asked for
