"""`cotdistill data`: every benchmark source with its counts, or how to get it. Lists without downloading."""

from __future__ import annotations

import argparse
import os
from collections import Counter
from collections.abc import Callable

from ..errors import CotdistillError
from ..paths import cache_dir
from ..records import Example
from .common import DATA_ENV

SOURCES = ("bbh", "agieval", "arc", "bbsub")


def _table(title: str, examples: list[Example], verbose: bool) -> str:
    counts = Counter((e.task, e.split) for e in examples)
    tasks = sorted({e.task for e in examples})
    train, test = sum(e.split == "train" for e in examples), sum(e.split == "test" for e in examples)
    lines = [f"{title}: {len(tasks)} tasks, {len(examples):,} questions ({train:,} train / {test:,} test)"]
    if verbose:
        lines += ["", "| task | train | test |", "|---|---:|---:|"]
        lines += [f"| {t} | {counts[(t, 'train')]} | {counts[(t, 'test')]} |" for t in tasks]
    return "\n".join(lines)


def _bbh(seed: int) -> list[Example]:
    from . import bbh
    from .common import data_root

    root = data_root()
    cached = cache_dir() / f"bbh-{bbh.RELEASE_COMMIT[:7]}"
    if not (root and (root / "bbh").is_dir()) and not cached.is_dir():
        raise CotdistillError(f"not fetched yet: the first `data.source=bbh` run downloads the official release "
                              f"({bbh.RELEASE_REPO} @ {bbh.RELEASE_COMMIT[:7]}, sha256-checked) into {cached}; "
                              f"or set data.path / ${DATA_ENV} to a folder with its task files")
    return bbh.load_bbh(seed=seed, path=str(root / "bbh") if root and (root / "bbh").is_dir() else None)


def _bbsub(seed: int) -> list[Example]:
    from . import bigbench

    if not (cache_dir() / "bigbench-1.0.0" / "benchmark_tasks").is_dir():
        raise CotdistillError(f"not fetched yet: the first `data.source=bbsub` run fetches the bigbench==1.0.0 sdist "
                              f"(358 MB) from the package index into {cache_dir()} and keeps its task JSONs")
    return bigbench.load_bbsub(seed=seed)


def _agieval(seed: int) -> list[Example]:
    from .agieval import load_agieval

    return load_agieval()


def _arc(seed: int) -> list[Example]:
    from .arc import load_arc

    return load_arc()


LOADERS: dict[str, tuple[str, Callable[[int], list[Example]]]] = {
    "bbh": ("Official BBH (BIG-Bench Hard; train:test 4:1 per task, seeded)", _bbh),
    "agieval": ("AGIEval (8 English multiple-choice subsets; all test)", _agieval),
    "arc": ("ARC (EDIT's test sets; all test)", _arc),
    "bbsub": ("BB-sub (BIG-bench multiple-choice reasoning tasks outside BBH, up to 100 each; all test)", _bbsub),
}


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", choices=["all", *SOURCES], default="all")
    p.add_argument("--data-root", help=f"a folder with bbh/, agieval/, arc/ (sets ${DATA_ENV})")
    p.add_argument("--seed", type=int, default=0, help="BBH's split seed (data.seed)")
    p.add_argument("-v", "--verbose", action="store_true", help="one row per task")


def data_command(args: argparse.Namespace) -> None:
    if args.data_root:
        os.environ[DATA_ENV] = args.data_root
    for source in SOURCES if args.source == "all" else (args.source,):
        title, load = LOADERS[source]
        try:
            examples = load(args.seed)
        except CotdistillError as e:
            print(f"{title}: {e}\n")
            continue
        print(_table(title, examples, args.verbose))
        if source == "arc":
            from .arc import HOW_TO_GET, SETS

            missing = sorted(set(SETS) - {e.task for e in examples})
            print("".join(f"{name}: not found. " for name in missing) + (HOW_TO_GET if missing else ""))
        print()
    if args.source == "all":
        print("Your data: data.source=file data.path=FILE.jsonl|.csv (data.fields maps columns), "
              "or data.source=hub data.path=NAME")
