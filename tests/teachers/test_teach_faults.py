"""The teacher stages against a real loopback server that fails 25% of its requests (429, 500, replies past
the timeout, cut-off bodies, invalid JSON): every item completes, each answer is cached once, nothing
answered is asked again; killed with SIGKILL mid-run and restarted, the run finishes with identical results
and re-sends nothing it had stored."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from teach_testutil import choice_examples, http_teacher

from cotdistill.records import DualPair, Rationale, read_jsonl, write_jsonl
from cotdistill.teachers.stages import TeachSettings, run_teach
from cotdistill.teachers.testing import FaultServer

FAULT_RATE = 0.25


def _asked_after_answered(server: FaultServer) -> list[str]:
    """Request ids sent again after the server had already answered them successfully."""
    answered: set[str] = set()
    repeats = []
    for served in server.log:
        if served.request_id in answered:
            repeats.append(served.request_id)
        if served.outcome == "ok":
            answered.add(served.request_id)
    return repeats


def test_every_item_completes_under_faults_and_each_answer_is_cached_once(tmp_path):
    examples = choice_examples(16)
    with FaultServer(fault_rate=FAULT_RATE, slow_seconds=3.0, seed=1) as server:
        teacher = http_teacher(server.base_url, tmp_path / "cache.sqlite")
        reports = run_teach(tmp_path / "run", examples, teacher, TeachSettings(n=2, rectify_budget=4, corrupt_budget=4))
        outcomes = server.outcomes()
        assert sum(v for k, v in outcomes.items() if k != "ok") >= 0.15 * len(server.log)  # faults really happened
        assert reports["generate"].succeeded == 32 and reports["generate"].failed == 0
        assert reports["grade"].succeeded + reports["grade"].failed == 32
        # every fault cost exactly one retry; no answered request was sent again
        assert sum(r.usage.get("retries", 0) for r in reports.values()) == len(server.log) - outcomes["ok"]
        assert _asked_after_answered(server) == []
        db = sqlite3.connect(tmp_path / "cache.sqlite")
        rows, distinct = db.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM completions").fetchone()
        assert rows == distinct == outcomes["ok"]  # each delivered answer stored once
        # a rerun in a new run folder is answered from the cache alone
        before = len(server.log)
        again = run_teach(tmp_path / "run2", examples, http_teacher(server.base_url, tmp_path / "cache.sqlite"),
                          TeachSettings(n=2, rectify_budget=4, corrupt_budget=4))
        assert len(server.log) == before
        assert again["generate"].usage["cached"] == 32 and again["generate"].usage.get("requests", 0) == 0


def _teach_cmd(server: FaultServer, data: Path, run: Path, cache: Path) -> list[str]:
    return [sys.executable, "-m", "cotdistill", "teach", "--base-url", server.base_url, "--model", "toy-teacher",
            "--data", "file", "--data-file", str(data), "--n", "2", "--concurrency", "4", "--timeout", "2",
            "--max-retries", "12", "--backoff", "0.02", "--rectify-budget", "4", "--corrupt-budget", "4",
            "--run-dir", str(run), "--cache", str(cache)]


def _cached_ids(cache: Path) -> set[str]:
    db = sqlite3.connect(cache)
    try:
        return {key[:32] for (key,) in db.execute("SELECT key FROM completions")}
    finally:
        db.close()


def _outputs(run: Path) -> dict[str, list]:
    stages = run / "stages"
    pick = lambda name: next(stages.glob(f"{name}-*"))  # noqa: E731
    return {
        "teacher": [r.model_dump() for r in read_jsonl(pick("generate") / "teacher.jsonl", Rationale)],
        "rectified": [r.model_dump() for r in read_jsonl(pick("rectify") / "rectified.jsonl", Rationale)],
        "corrupted": [r.model_dump() for r in read_jsonl(pick("corrupt") / "corrupted.jsonl", Rationale)],
        "dual": [p.model_dump() for p in read_jsonl(pick("pair") / "dual.jsonl", DualPair)],
    }


def test_sigkill_mid_run_then_restart_gives_identical_results_and_resends_nothing_stored(tmp_path):
    data = tmp_path / "questions.jsonl"
    write_jsonl(data, choice_examples(24))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with FaultServer(fault_rate=FAULT_RATE, slow_seconds=3.0, latency=0.08, seed=2) as server:
        reference = subprocess.run(_teach_cmd(server, data, tmp_path / "ref", tmp_path / "ref.sqlite"),
                                   capture_output=True, text=True, env=env, timeout=300)
        assert reference.returncode == 0, reference.stderr
        total_ok = server.outcomes()["ok"]
        server.log.clear()

        cache = tmp_path / "cache.sqlite"
        cmd = _teach_cmd(server, data, tmp_path / "run", cache)
        kills = 0
        for kill_at in (total_ok // 4, total_ok * 2 // 3):  # once in generate, once in a later stage
            start = len(server.log)
            stored = _cached_ids(cache) if cache.exists() else set()
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            deadline = time.monotonic() + 120
            while sum(s.outcome == "ok" for s in server.log) < kill_at and proc.poll() is None:
                assert time.monotonic() < deadline, "the teacher made no progress"
                time.sleep(0.02)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait()
            resent = {s.request_id for s in server.log[start:]} & stored
            assert not resent, f"{len(resent)} stored answers were requested again"
        stored = _cached_ids(cache)
        start = len(server.log)
        final = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert final.returncode == 0, final.stderr
        assert kills == 2
        assert not {s.request_id for s in server.log[start:]} & stored
        # over all three processes, a request was answered twice only if it was in flight at a kill (its
        # answer never reached the cache): at most the 4 in flight per kill
        answered = defaultdict(int)
        for s in server.log:
            answered[s.request_id] += s.outcome == "ok"
        twice = sum(v == 2 for v in answered.values())
        assert max(answered.values()) <= 2 and twice <= 4 * kills
        assert sum(answered.values()) == total_ok + twice
    assert _outputs(tmp_path / "run") == _outputs(tmp_path / "ref")
