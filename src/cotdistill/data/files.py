"""User data: JSONL or CSV files and `datasets` hub names, mapped onto `Example` with a field mapping."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import CotdistillError, RecordError
from ..records import Example, iter_jsonl, parse_record

REQUIRED = ("question", "answer")


def _rows_of_csv(path: Path) -> Iterator[tuple[int, dict]]:
    try:
        fh = open(path, newline="", encoding="utf-8")
    except OSError as e:
        raise RecordError(str(path), 0, None, f"cannot read file: {e.strerror}") from None
    with fh:
        reader = csv.DictReader(fh)
        for row in reader:
            yield reader.line_num, row


def to_example(
    row: dict, path: str, line: int, fields: dict[str, str], task: str | None, answer_format: str | None
) -> Example:
    """Map one user row onto an Example; a missing or bad field raises a RecordError naming file and line."""
    if not isinstance(row, dict):
        raise RecordError(path, line, None, f"expected a JSON object, got {type(row).__name__}")
    data: dict = {}
    for ours in ("id", "task", "question", "answer", "answer_format", "choices", "task_description", "split"):
        column = fields.get(ours, ours)
        if column in row and row[column] not in (None, ""):
            data[ours] = row[column]
    for ours in REQUIRED:
        if ours not in data:
            column = fields.get(ours, ours)
            raise RecordError(path, line, column, "missing" + (f" (mapped to '{ours}')" if column != ours else ""))
    if isinstance(data.get("choices"), str):  # CSV cells hold a JSON list or "a|b|c"
        text = data["choices"]
        data["choices"] = json.loads(text) if text.startswith("[") else text.split("|")
    if not isinstance(data["answer"], str):
        data["answer"] = str(data["answer"])
    data.setdefault("task", task or Path(path).stem)
    data.setdefault("id", f"{data['task']}/{line}")
    if answer_format and "answer_format" not in data:
        data["answer_format"] = answer_format
    if "answer_format" not in data and data.get("choices"):
        data["answer_format"] = "choice" if data["answer"].strip().startswith("(") else "label"
    return parse_record(Example, data, path, line)


def load_file(
    path: str, fields: dict[str, str] | None = None, task: str | None = None, answer_format: str | None = None
) -> list[Example]:
    """Read a .jsonl or .csv file of questions; the whole file is validated before anything is returned."""
    p = Path(path)
    if not p.exists():
        raise CotdistillError(f"data file '{path}' does not exist")
    rows: Iterable[tuple[int, object]]
    if p.suffix == ".csv":
        rows = _rows_of_csv(p)
    elif p.suffix in (".jsonl", ".json"):
        rows = iter_jsonl(p)
    else:
        raise CotdistillError(f"data file '{path}': expected a .jsonl or .csv file")
    examples = [to_example(row, str(p), line, fields or {}, task, answer_format) for line, row in rows]
    seen: dict[str, int] = {}
    for i, e in enumerate(examples):
        if e.id in seen:
            raise RecordError(str(p), i + 1, "id", f"duplicate id '{e.id}'")
        seen[e.id] = i
    return examples


def load_hub(
    name: str,
    config: str | None = None,
    split: str = "train",
    fields: dict[str, str] | None = None,
    task: str | None = None,
    answer_format: str | None = None,
) -> list[Example]:
    """A `datasets` dataset by hub name or local folder; rows are mapped like file rows (row n = line n)."""
    import datasets

    try:
        ds = datasets.load_dataset(name, config, split=split)
    except Exception as e:  # datasets raises many types for a bad name; the user needs one line
        raise CotdistillError(f"cannot load dataset '{name}': {str(e).splitlines()[0]}") from None
    return [to_example(row, name, i + 1, fields or {}, task or name.rstrip("/").split("/")[-1], answer_format) for i, row in enumerate(ds)]
