"""Task sources: official BBH, BB-sub (from BIG-bench), AGIEval, ARC, user files, `datasets` hub names."""

from __future__ import annotations

from collections import defaultdict

from ..config import DataConfig
from ..errors import CotdistillError
from ..records import Example


def load_examples(cfg: DataConfig) -> list[Example]:
    """The examples a data config names, in a stable order."""
    from . import agieval, arc, bbh, bigbench, files

    if cfg.source == "bbh":
        examples = bbh.load_bbh(cfg.subtasks, cfg.split, cfg.seed, cfg.path, cfg.hub)
    elif cfg.source in ("bbsub", "agieval", "arc"):  # test sets: every question is split "test"
        if cfg.source == "bbsub":
            examples = bigbench.load_bbsub(cfg.subtasks, cfg.max_per_task or bigbench.BBSUB_MAX_PER_TASK, cfg.seed)
        elif cfg.source == "agieval":
            examples = agieval.load_agieval(cfg.subtasks, cfg.path)
        else:
            examples = arc.load_arc(cfg.subtasks, cfg.path, cfg.hub)
        examples = [e for e in examples if cfg.split in (None, e.split)]
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
        seen: dict[str, int] = defaultdict(int)
        kept = []
        for e in examples:
            if seen[e.task] < cfg.limit_per_task:
                seen[e.task] += 1
                kept.append(e)
        examples = kept
    if not examples:
        raise CotdistillError(f"data source '{cfg.source}' gave no examples (split={cfg.split}, subtasks={cfg.subtasks})")
    return examples
