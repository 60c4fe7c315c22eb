"""A run folder of hashed stages: the cache every pipeline (evaluation, teaching, studies) builds on.

A stage's folder is named by a hash of its parameters (which include the hashes of its inputs), so a changed
config reruns exactly the stages it touches. A stage is finished once its `_done.json` is written; a folder
without it holds an interrupted stage, whose journal lets it resume. A user error raised before a stage has
produced anything leaves no folder behind. Each stage runs under a file lock, so parallel workers that need the
same stage compute it once: the others wait, then find it done. The lock dies with its process, so a killed
worker never leaves a stage locked.

This module imports nothing of the pipelines that use it (pipeline.py, study.py, teachers/stages.py).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import CotdistillError
from .records import atomic_write_text

DONE = "_done.json"


def fingerprint(value: Any) -> str:
    """A short stable hash of JSON-able data (configs, parameters)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()[:16]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock held while the block runs; another process asking for it waits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class RunFolder:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def stage(self, name: str, params: dict, work: Callable[[Path], None]) -> Path:
        """Run `work(folder)` unless a finished stage with the same parameters exists; return the folder."""
        key = fingerprint({"stage": name, **params})
        folder = self.root / "stages" / f"{name}-{key}"
        if (folder / DONE).exists():
            log(f"[{name}] up to date ({folder})")
            return folder
        with file_lock(self.root / "stages" / ".locks" / folder.name):
            if (folder / DONE).exists():  # another worker finished it while this one waited
                log(f"[{name}] up to date ({folder})")
                return folder
            fresh = not folder.exists()
            log(f"[{name}] {'running' if fresh else 'resuming'} -> {folder}")
            try:
                work(folder)
            except CotdistillError:
                if fresh:
                    shutil.rmtree(folder, ignore_errors=True)
                raise
            atomic_write_text(folder / DONE, json.dumps({"stage": name, "key": key, "params": params}, indent=2,
                                                        default=str))
        return folder
