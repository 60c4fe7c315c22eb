"""Task sources: BIG-bench (BBH, BB-sub), user files, `datasets` hub names, and the lab."""

from __future__ import annotations

from collections import defaultdict

from ..config import DataConfig
from ..errors import CotdistillError
from ..records import Example


def load_examples(cfg: DataConfig) -> list[Example]:
    """The examples a data config names, in a stable order."""
    from . import bigbench, files

    if cfg.source == "bbh":
        cap = cfg.max_per_task or bigbench.BBH_MAX_PER_TASK
        examples = bigbench.load_bbh(cfg.subtasks, cfg.split, cap, cfg.seed)
    elif cfg.source == "bbsub":
        cap = cfg.max_per_task or bigbench.BBSUB_MAX_PER_TASK
        examples = [e for e in bigbench.load_bbsub(cfg.subtasks, cap, cfg.seed) if cfg.split in (None, e.split)]
    else:
        if not cfg.path:
            raise CotdistillError(f"data source '{cfg.source}' needs data.path")
        if cfg.source == "file":
            examples = files.load_file(cfg.path, cfg.fields, cfg.task, cfg.answer_format)
        else:
            examples = files.load_hub(cfg.path, cfg.hub_config, cfg.hub_split, cfg.fields, cfg.task, cfg.answer_format)
        if cfg.subtasks is not None:
            examples = [e for e in examples if e.task in cfg.subtasks]
        if cfg.split is not None and any(e.split == cfg.split for e in examples):
            examples = [e for e in examples if e.split == cfg.split]
    if cfg.limit_per_task is not None:
        # per task and split, so a study that loads every split still gets test questions from a small limit
        seen: dict[tuple[str, str], int] = defaultdict(int)
        kept = []
        for e in examples:
            if seen[(e.task, e.split)] < cfg.limit_per_task:
                seen[(e.task, e.split)] += 1
                kept.append(e)
        examples = kept
    if not examples:
        raise CotdistillError(f"data source '{cfg.source}' gave no examples (split={cfg.split}, subtasks={cfg.subtasks})")
    return examples
