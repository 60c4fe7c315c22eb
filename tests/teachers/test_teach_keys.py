"""API keys: read from the environment or a file, hidden from every text form, and - planted in a real run
against a loopback server that requires it - found in no file of the run folder or the cache."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import pytest
from teach_testutil import choice_examples

from cotdistill.errors import CotdistillError
from cotdistill.records import write_jsonl
from cotdistill.teachers.keys import ApiKey, load_api_key
from cotdistill.teachers.testing import FaultServer

PLANTED = "sk-planted-7f3a9c51e2d84b6a"


def test_a_key_never_shows_in_repr_str_format_pickle_or_json():
    key = ApiKey(PLANTED)
    for text in (repr(key), str(key), f"{key}", f"{key!r}", "%s" % key):
        assert PLANTED not in text
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(TypeError):
        json.dumps({"k": key})
    assert key.reveal() == PLANTED and key.redact(f"bad key {PLANTED}") == "bad key ****"


def test_keys_come_from_a_file_first_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_TEACHER_KEY", "from-env")
    (tmp_path / "key").write_text("\n  from-file  \n")
    assert load_api_key("MY_TEACHER_KEY", tmp_path / "key").reveal() == "from-file"
    assert load_api_key("MY_TEACHER_KEY").reveal() == "from-env"
    assert load_api_key("UNSET_VARIABLE_XYZ") is None
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(CotdistillError, match="is empty"):
        load_api_key(None, tmp_path / "empty")
    with pytest.raises(CotdistillError, match="cannot read the API key file"):
        load_api_key(None, tmp_path / "missing")


def test_a_planted_key_appears_in_no_file_of_the_run_folder_or_the_cache(tmp_path):
    data = tmp_path / "questions.jsonl"
    write_jsonl(data, choice_examples(6))
    run, cache = tmp_path / "run", tmp_path / "cache" / "teacher.sqlite"
    env = {**os.environ, "PLANTED_KEY": PLANTED, "PYTHONPATH": os.pathsep.join(sys.path)}
    with FaultServer(api_key=PLANTED, fault_rate=0.2, faults=["500", "429"]) as server:
        done = subprocess.run(
            [sys.executable, "-m", "cotdistill", "teach", "--base-url", server.base_url, "--model", "toy",
             "--api-key-env", "PLANTED_KEY", "--data", "file", "--data-file", str(data), "--n", "2",
             "--backoff", "0.01", "--run-dir", str(run), "--cache", str(cache)],
            capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "unauthorized" not in server.outcomes()  # the key was really sent, so it was really in hand
    files = [p for p in [*run.rglob("*"), *cache.parent.rglob("*")] if p.is_file()]
    assert len(files) > 10 and any(p.name.startswith("teacher.sqlite") for p in files)
    needle = PLANTED.encode()
    leaked = [str(p) for p in files if needle in p.read_bytes()]
    assert leaked == []
    assert PLANTED not in done.stdout + done.stderr
