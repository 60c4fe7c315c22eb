"""Helpers the benchmark loaders share: where local copies of the data live, lettered options, seeded splits."""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

from ..errors import CotdistillError
from ..grading import option_label
from ..records import Example

DATA_ENV = "COTDISTILL_DATA"
TRAIN_SHARE = 0.8  # EDIT splits every BBH task train:test = 4:1

# One option per line, "(A) text" (BBH, ARC) or "(A)text" (AGIEval); ARC also numbers some options "(1)".
_OPTION_LINE = re.compile(r"^\(([A-Z]|[1-9])\)\s?(.*)$")


def read_json_list(path: Path, field: str, what: str, expected: str) -> list:
    """The list under `field` of a JSON file, or a CotdistillError naming the file, and the field when it is
    missing or not a list (`what` names the file's kind, `expected` its layout)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise CotdistillError(f"{path}: cannot read {what}: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get(field), list):
        raise CotdistillError(f"{path}: field '{field}': missing (expected {expected})")
    return data[field]


def data_root() -> Path | None:
    """$COTDISTILL_DATA: a folder laid out like the project's shared data (bbh/, agieval/, arc/), if set."""
    value = os.environ.get(DATA_ENV)
    return Path(value) if value else None


def local_folder(explicit: str | None, name: str) -> Path | None:
    """The folder a loader reads: `data.path` if given (it must exist), else $COTDISTILL_DATA/<name> if it
    exists, else None (the loader then downloads or explains how to get the data)."""
    if explicit:
        path = Path(explicit)
        if not path.exists():
            raise CotdistillError(f"data.path '{explicit}' does not exist")
        return path
    root = data_root()
    if root is not None and (root / name).exists():
        return root / name
    return None


def parse_options(lines: list[str]) -> list[tuple[str, str]]:
    """(label, text) of every option line; other lines are ignored."""
    return [(m.group(1), m.group(2).strip()) for line in lines if (m := _OPTION_LINE.match(line.strip()))]


def letter(index: int) -> str:
    """The label of the index-th option: (A)..(Z), then (AA), (AB), .. (grading.option_label)."""
    return option_label(index)


def lettered(question: str, options: list[str]) -> str:
    """A question followed by its options as BBH writes them: "Options:" then "(A) ..." lines."""
    lines = [f"{letter(i)} {opt}" for i, opt in enumerate(options)]
    return question.rstrip() + "\nOptions:\n" + "\n".join(lines)


def train_indices(n: int, seed: int, key: str) -> set[int]:
    """A seeded random 4:1 split of n items: the indices that go to train (the rest are test).

    Seeded by the task's name as well, so adding a task never reshuffles another one."""
    order = list(range(n))
    random.Random(f"{key}:{seed}").shuffle(order)
    return set(order[: round(n * TRAIN_SHARE)])


def check_tasks(names: list[str] | None, known: list[str], what: str) -> list[str]:
    """The tasks asked for (all known ones for None); an unknown name is an error that lists the known ones."""
    if names is None:
        return list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise CotdistillError(f"unknown {what} '{unknown[0]}'; known: {', '.join(known)}")
    return list(names)


def choice_example(id: str, task: str, stem: str, options: list[str], gold: int) -> Example:
    """A test question with lettered options and no task description (EDIT's prompt for AGIEval and ARC)."""
    return Example(id=id, task=task, question=lettered(stem, options), answer=letter(gold), answer_format="choice",
                   choices=options, split="test")
