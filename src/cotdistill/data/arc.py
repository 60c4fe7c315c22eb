"""ARC (Clark et al., 2018) test sets, ARC-Easy (2,376 questions) and ARC-Challenge (1,172), EDIT's OOD sets.

Two layouts are read:

* EDIT's JSON: a list of `{"input": "Question: ...\\nOptions:\\n(A) ...", "target": "(C)"}` in
  `ARC-Easy-Test.json` / `ARC-Challenge-Test.json`, from `data.path` (a folder holding them, or one file whose
  name says Easy or Challenge) or `$COTDISTILL_DATA/arc`;
* the hub's `ai2_arc` rows (`question`, `choices: {"text", "label"}`, `answerKey`), from `data.hub` (e.g.
  allenai/ai2_arc, configs ARC-Easy and ARC-Challenge, split test) or a local .json/.jsonl file of such rows.

About 4% of ARC questions number their options "(1)".."(4)" instead of lettering them; those are relettered
(A)..(D), gold included, so every question is graded the same way. Questions are split "test" with no task
description (EDIT's prompt for ARC); ids are `arc-e/ARC-Easy/<index>` and `arc-c/ARC-Challenge/<index>`.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import CotdistillError, RecordError
from ..records import Example, iter_jsonl
from .common import check_tasks, choice_example, local_folder, parse_options

SETS = {"ARC-Easy": "arc-e", "ARC-Challenge": "arc-c"}  # set -> benchmark key (the id prefix)
HOW_TO_GET = ("ARC: put EDIT's ARC-Easy-Test.json / ARC-Challenge-Test.json (github.com/C-W-D/CasCoD, dataset/arc-*) "
              "in a folder and set data.path (or $COTDISTILL_DATA/arc), or set data.hub=allenai/ai2_arc")


def _from_edit(row: dict, where: tuple[str, int]) -> tuple[str, list[str], int]:
    lines = row["input"].splitlines()
    if "Options:" not in lines:
        raise RecordError(*where, "input", "no 'Options:' line")
    cut = lines.index("Options:")
    parsed = parse_options(lines[cut + 1 :])
    labels = [label for label, _ in parsed]
    target = row.get("target")
    if not isinstance(target, str) or target.strip("() ") not in labels:
        raise RecordError(*where, "target", f"{target!r} is not one of the options {labels}")
    return "\n".join(lines[:cut]), [text for _, text in parsed], labels.index(target.strip("() "))


def _from_hub(row: dict, where: tuple[str, int]) -> tuple[str, list[str], int]:
    choices = row.get("choices")
    if not isinstance(choices, dict) or not isinstance(choices.get("text"), list) or not isinstance(choices.get("label"), list):
        raise RecordError(*where, "choices", 'expected {"text": [...], "label": [...]}')
    labels = [str(label) for label in choices["label"]]
    key = str(row.get("answerKey", ""))
    if key not in labels:
        raise RecordError(*where, "answerKey", f"{key!r} is not one of the labels {labels}")
    return f"Question: {str(row.get('question', '')).strip()}", [str(t).strip() for t in choices["text"]], labels.index(key)


def row_to_example(arc_set: str, index: int, row: object, path: str, line: int) -> Example:
    """One row of either layout as an Example; a malformed row raises a RecordError naming file, line, field."""
    where = (path, line)
    if not isinstance(row, dict):
        raise RecordError(path, line, None, f"expected a JSON object, got {type(row).__name__}")
    if isinstance(row.get("input"), str):
        stem, options, gold = _from_edit(row, where)
    elif "question" in row:
        stem, options, gold = _from_hub(row, where)
    else:
        raise RecordError(path, line, "input", "missing (expected EDIT's {input, target} or ai2_arc's {question, choices, answerKey})")
    return choice_example(f"{SETS[arc_set]}/{arc_set}/{index}", arc_set, stem, options, gold)


def _rows_of_file(path: Path) -> list[tuple[int, object]]:
    """(line or item number, row) of a JSON list or a JSONL file."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            return list(enumerate(json.loads(text), start=1))
        except json.JSONDecodeError as e:
            raise RecordError(str(path), e.lineno, None, f"invalid JSON: {e.msg}") from None
    return list(iter_jsonl(path))


def _set_of_file(path: Path) -> str:
    name = path.name.lower()
    for arc_set in SETS:
        if arc_set.split("-")[1].lower() in name:
            return arc_set
    raise CotdistillError(f"{path}: cannot tell the ARC set from the file name (it must contain 'Easy' or 'Challenge')")


def _from_files(files: dict[str, Path]) -> list[Example]:
    return [row_to_example(arc_set, i, row, str(f), line)
            for arc_set, f in files.items() for i, (line, row) in enumerate(_rows_of_file(f))]


def _from_hub_dataset(name: str, sets: list[str]) -> list[Example]:
    import datasets

    out = []
    for arc_set in sets:
        try:
            rows = datasets.load_dataset(name, arc_set, split="test")
        except Exception as e:  # datasets raises many types for a bad name; the user needs one line
            raise CotdistillError(f"cannot load {arc_set} from dataset '{name}': {str(e).splitlines()[0]}") from None
        out += [row_to_example(arc_set, i, row, f"{name}:{arc_set}", i + 1) for i, row in enumerate(rows)]
    return out


def load_arc(sets: list[str] | None = None, path: str | None = None, hub: str | None = None) -> list[Example]:
    """ARC test questions of the given sets (by default every set the source holds)."""
    names = check_tasks(sets, list(SETS), "ARC set")
    if hub:
        return _from_hub_dataset(hub, names)
    source = local_folder(path, "arc")
    if source is None:
        raise CotdistillError(f"no ARC data: {HOW_TO_GET}")
    if source.is_file():
        arc_set = _set_of_file(source)
        return _from_files({arc_set: source}) if arc_set in names else []
    found = {_set_of_file(f): f for f in sorted(source.iterdir()) if f.suffix in (".json", ".jsonl")
             and any(s.split("-")[1].lower() in f.name.lower() for s in SETS)}
    missing = [s for s in names if s not in found]
    if missing and sets is not None:
        raise CotdistillError(f"no {missing[0]} file in '{source}'; {HOW_TO_GET}")
    return _from_files({s: found[s] for s in names if s in found})
