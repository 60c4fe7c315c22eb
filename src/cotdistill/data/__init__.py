"""Task sources: official BBH, BB-sub (from BIG-bench), AGIEval, ARC, user files, `datasets` hub names."""

from __future__ import annotations

from collections import defaultdict

from ..config import DataConfig
from ..errors import CotdistillError
from ..records import Example


# Benchmark keys (the first part of an example id) and the names reports give them, as in EDIT's Table 1.
BENCHMARK_LABELS = {"bbh": "BBH", "bbsub": "BB-sub", "agieval": "AGIEval", "arc-e": "ARC-E", "arc-c": "ARC-C"}


def benchmark_of(example: Example) -> str:
    """Ids look like "bbh/<task>/<n>"; the first part names the benchmark ("data" for ids without one)."""
    return example.id.split("/", 1)[0] if "/" in example.id else "data"


def benchmark_label(key: str) -> str:
    return BENCHMARK_LABELS.get(key, key)


def load_sections(sections: DataConfig | list[DataConfig]) -> list[Example]:
    """The examples of one data section or of several (one config evaluating BBH, AGIEval and ARC at once)."""
    examples = [e for cfg in (sections if isinstance(sections, list) else [sections]) for e in load_examples(cfg)]
    seen: set[str] = set()
    for e in examples:
        if e.id in seen:
            raise CotdistillError(f"example id '{e.id}' comes from two data sections; give each benchmark once")
        seen.add(e.id)
    return examples


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
