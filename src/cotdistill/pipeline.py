"""Stages as functions over artifacts in a run folder.

A stage's folder is named by a hash of its parameters (which include the hashes of its inputs), so a changed
config reruns exactly the stages it touches. A stage is finished once its `_done.json` is written; a folder
without it holds an interrupted stage, whose journal lets it resume. A user error raised before a stage has
produced anything leaves no folder behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .config import RunConfig
from .errors import CotdistillError
from .records import Example, atomic_write_text, read_jsonl, write_jsonl

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
        fresh = not folder.exists()
        log(f"[{name}] {'running' if fresh else 'resuming'} -> {folder}")
        try:
            work(folder)
        except CotdistillError:
            if fresh:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        atomic_write_text(folder / DONE, json.dumps({"stage": name, "key": key, "params": params}, indent=2, default=str))
        return folder


def examples_stage(run: RunFolder, cfg: RunConfig) -> Path:
    from .data import load_examples

    params = {"data": cfg.data.model_dump()}
    if cfg.data.source == "file" and cfg.data.path and Path(cfg.data.path).is_file():
        params["file_sha256"] = file_digest(Path(cfg.data.path))  # an edited file is new input

    def work(folder: Path) -> None:
        examples = load_examples(cfg.data)  # validate everything before writing anything
        write_jsonl(folder / "examples.jsonl", examples)
        log(f"[examples] {len(examples)} examples from {cfg.data.source}")

    return run.stage("examples", params, work) / "examples.jsonl"


def eval_stage(run: RunFolder, cfg: RunConfig, examples_file: Path) -> Path:
    from .environment import describe
    from .evaluate import evaluate, metrics_table
    from .models import load_student

    params = {
        "examples": file_digest(examples_file),
        "student": cfg.student.model_dump(),
        "eval": cfg.eval.model_dump(),
        "seed": cfg.seed,
    }

    def work(folder: Path) -> None:
        examples = read_jsonl(examples_file, Example)
        model, tokenizer = load_student(cfg.student)  # fails before the stage folder exists
        model.eval()
        metrics = evaluate(model, tokenizer, examples, cfg.eval, folder, seed=cfg.seed)
        atomic_write_text(folder / "environment.json", json.dumps(describe(), indent=1) + "\n")
        atomic_write_text(folder / "table.md", metrics_table(metrics) + "\n")

    return run.stage("eval", params, work)


def run_pipeline(cfg: RunConfig, stages: tuple[str, ...] = ("examples", "eval")) -> dict:
    """Run the configured stages; returns the evaluation metrics (empty if evaluation was not asked for)."""
    from .models import resolve_model

    if cfg.study is not None:
        from .study import run_study

        run_study(cfg)
        atomic_write_text(Path(cfg.run_dir) / "config.yaml", yaml.safe_dump(cfg.model_dump(), sort_keys=False))
        return {}
    if "eval" in stages:
        resolve_model(cfg.student.model, cfg.student.gguf_file)  # a bad model path fails before any stage runs
    run = RunFolder(cfg.run_dir)
    created = not run.root.exists()
    try:
        examples_file = examples_stage(run, cfg)
        metrics: dict = {}
        if "eval" in stages:
            folder = eval_stage(run, cfg, examples_file)
            for name in ("metrics.json", "predictions.jsonl", "table.md", "environment.json"):
                if (folder / name).exists():  # environment.json: not in stages finished before it was recorded
                    atomic_write_text(run.root / name, (folder / name).read_text(encoding="utf-8"))
            metrics = json.loads((folder / "metrics.json").read_text())
            print((folder / "table.md").read_text())
        atomic_write_text(run.root / "config.yaml", yaml.safe_dump(cfg.model_dump(), sort_keys=False))
        return metrics
    except CotdistillError:
        if created and not any(run.root.rglob(DONE)):
            shutil.rmtree(run.root, ignore_errors=True)
        raise
