"""The plain evaluation pipeline (examples, then evaluation) as stages of a run folder (runfolder.py); a config
with a `study` section runs the study instead (study.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from .config import RunConfig
from .errors import CotdistillError
from .records import Example, atomic_write_text, read_jsonl, write_jsonl
from .runfolder import DONE, RunFolder, file_digest, log
from .study import run_study


def examples_stage(run: RunFolder, cfg: RunConfig) -> Path:
    from .data import load_sections

    sections = cfg.data if isinstance(cfg.data, list) else [cfg.data]
    params: dict = {"data": [d.model_dump() for d in cfg.data] if isinstance(cfg.data, list) else cfg.data.model_dump()}
    files = [Path(d.path) for d in sections if d.source == "file" and d.path and Path(d.path).is_file()]
    if files:  # an edited file is new input
        digests = [file_digest(f) for f in files]
        params["file_sha256"] = digests if isinstance(cfg.data, list) else digests[0]

    def work(folder: Path) -> None:
        examples = load_sections(cfg.data)  # validate everything before writing anything
        write_jsonl(folder / "examples.jsonl", examples)
        log(f"[examples] {len(examples)} examples from {', '.join(d.source for d in sections)}")

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
