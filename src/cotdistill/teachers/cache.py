"""The teacher cache: every completion a teacher server returned, in SQLite, so no call is ever paid twice.

A completion is keyed on (model, rendered prompt, sampling parameters, sample index); `max_tokens` is kept
beside the key rather than in it, so that raising the budget re-requests only the completions that were cut
off: a completion that stopped by itself within the new budget is reused as it is. The database runs in WAL
mode with a busy timeout, so several processes (stages run side by side, or a killed run and its restart) can
read and write it at once; each row is committed as soon as its answer arrives. Usage per stage (requests,
cache hits, retries, failures, tokens) is accounted in a second table.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..paths import cache_dir
from .base import Completion, Prompt, SamplingParams

USAGE_FIELDS = ("requests", "cached", "retries", "failures", "prompt_tokens", "completion_tokens")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    key TEXT NOT NULL,
    max_tokens INTEGER NOT NULL,
    model TEXT NOT NULL,
    sample_index INTEGER NOT NULL,
    request TEXT NOT NULL,
    text TEXT NOT NULL,
    finish_reason TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (key, max_tokens)
);
CREATE TABLE IF NOT EXISTS usage (
    stage TEXT PRIMARY KEY,
    requests INTEGER NOT NULL DEFAULT 0,
    cached INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0
);
"""


def default_cache_path() -> Path:
    """$COTDISTILL_CACHE/teacher.sqlite (see `cotdistill.paths.cache_dir`)."""
    return cache_dir() / "teacher.sqlite"


def request_identity(model: str, prompt: Prompt, params: SamplingParams, sample_index: int) -> dict:
    """What a completion depends on, as JSON-able data (max_tokens excluded: it is stored per row)."""
    return {
        "model": model,
        "prompt": prompt,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "stop": list(params.stop),
        "seed": params.seed,
        "sample": sample_index,
    }


def request_key(model: str, prompt: Prompt, params: SamplingParams, sample_index: int) -> str:
    text = json.dumps(request_identity(model, prompt, params, sample_index), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class TeacherCache:
    """A SQLite completion cache that is safe to share between threads and processes."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            # autocommit (isolation_level=None): each statement is its own transaction, committed at once
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a killed process
            db.execute("PRAGMA busy_timeout=60000")
            self._local.db = db
        return db

    def get(self, key: str, max_tokens: int) -> Completion | None:
        """The completion for `key` made with this budget, or one that finished within it under another."""
        row = self._connect().execute(
            "SELECT text, finish_reason, prompt_tokens, completion_tokens FROM completions "
            "WHERE key = ? AND (max_tokens = ? OR (finish_reason = 'stop' AND completion_tokens <= ?)) "
            "ORDER BY max_tokens = ? DESC LIMIT 1",
            (key, max_tokens, max_tokens, max_tokens),
        ).fetchone()
        if row is None:
            return None
        text, reason, p_tokens, c_tokens = row
        return Completion(text=text, finish_reason=reason, prompt_tokens=p_tokens, completion_tokens=c_tokens,
                          extra={"cached": True})

    def put(self, key: str, max_tokens: int, model: str, sample_index: int, identity: Mapping,
            completion: Completion) -> None:
        """Store one completion; a second writer of the same (key, max_tokens) leaves the first in place."""
        self._connect().execute(
            "INSERT OR IGNORE INTO completions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, max_tokens, model, sample_index, json.dumps(identity, ensure_ascii=False), completion.text,
             completion.finish_reason, completion.prompt_tokens, completion.completion_tokens, time.time()),
        )

    def __len__(self) -> int:
        return self._connect().execute("SELECT COUNT(*) FROM completions").fetchone()[0]

    def keys(self) -> list[tuple[str, int]]:
        return [tuple(r) for r in self._connect().execute("SELECT key, max_tokens FROM completions")]

    def rows(self) -> Iterator[dict]:
        cursor = self._connect().execute(
            "SELECT key, max_tokens, model, sample_index, text, finish_reason FROM completions ORDER BY key")
        for key, max_tokens, model, index, text, reason in cursor:
            yield {"key": key, "max_tokens": max_tokens, "model": model, "sample_index": index, "text": text,
                   "finish_reason": reason}

    def add_usage(self, stage: str, counts: Mapping[str, int]) -> None:
        values = [int(counts.get(f, 0)) for f in USAGE_FIELDS]
        if not any(values):
            return
        sets = ", ".join(f"{f} = {f} + excluded.{f}" for f in USAGE_FIELDS)
        self._connect().execute(
            f"INSERT INTO usage (stage, {', '.join(USAGE_FIELDS)}) VALUES (?, {', '.join('?' * len(values))}) "
            f"ON CONFLICT(stage) DO UPDATE SET {sets}",
            (stage, *values),
        )

    def usage(self) -> dict[str, dict[str, int]]:
        """Accumulated usage per stage name, over every run that used this cache."""
        cursor = self._connect().execute(f"SELECT stage, {', '.join(USAGE_FIELDS)} FROM usage ORDER BY stage")
        return {row[0]: dict(zip(USAGE_FIELDS, row[1:])) for row in cursor}

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
