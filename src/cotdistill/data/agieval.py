"""AGIEval (Zhong et al., 2023): the 8 English multiple-choice subsets EDIT evaluates on, 2,546 questions.

Read from the official JSONL files (`<subset>.jsonl`, one `{"passage", "question", "options", "label"}` per
line, options written "(A)text", label "A"), from `data.path` (a folder, or one subset's file) or
`$COTDISTILL_DATA/agieval`. The files are in the AGIEval repository (ruixiangcui/AGIEval, `data/v1/`).

The official files are used as they are, with one repair: 62 LogiQA-en items write option letters unbracketed
("A text", "A? text"), leave them out, or bracket them out of order ("(A)", "(C)", "(B)", "(D)"). Options are
relettered by position, and the gold is the option written with the label's letter (its position where no
option or several are), so the gold still names the option the label named.

Every question is a test question (split "test"), asked as "Passage: ...\\nQuestion: ...\\nOptions:\\n(A) ..."
(no passage line where the subset has none) with no task description, as EDIT prompts AGIEval.
Ids are `agieval/<subset>/<line number>`.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import CotdistillError, RecordError
from ..records import Example, iter_jsonl
from .common import check_tasks, choice_example, local_folder

_BRACKETED = re.compile(r"\(([A-Z])\)\s*")
_BARE = re.compile(r"([A-Z])[?\s]\s*")

SUBSETS = {  # subset -> questions in the official v1 files
    "aqua-rat": 254, "logiqa-en": 651, "lsat-ar": 230, "lsat-lr": 510, "lsat-rc": 269,
    "sat-math": 220, "sat-en": 206, "sat-en-without-passage": 206,
}
HOW_TO_GET = ("AGIEval: download data/v1/<subset>.jsonl for the 8 English subsets from "
              "https://github.com/ruixiangcui/AGIEval into a folder and set data.path (or $COTDISTILL_DATA/agieval)")


def row_to_example(subset: str, row: object, path: str, line: int) -> Example:
    """One official JSONL row as an Example; a malformed row raises a RecordError naming file, line and field."""
    if not isinstance(row, dict):
        raise RecordError(path, line, None, f"expected a JSON object, got {type(row).__name__}")
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise RecordError(path, line, "question", "missing or not a string")
    raw_options = row.get("options")
    if not isinstance(raw_options, list) or not all(isinstance(o, str) for o in raw_options):
        raise RecordError(path, line, "options", "expected a list of strings like \"(A)text\"")
    written = [_written_letter(option, position) for position, option in enumerate(raw_options)]
    label = row.get("label")
    if not isinstance(label, str) or len(label) != 1 or not 0 <= ord(label) - 65 < len(written):
        raise RecordError(path, line, "label", f"{label!r} is not one option's letter")
    letters = [letter for letter, _ in written]
    # The gold is the option written with the label's letter; where letters repeat, its position.
    gold = letters.index(label) if letters.count(label) == 1 else ord(label) - 65
    passage = row.get("passage") or ""
    stem = f"Passage: {passage.strip()}\nQuestion: {question.strip()}" if passage.strip() else f"Question: {question.strip()}"
    return choice_example(f"agieval/{subset}/{line}", subset, stem, [text for _, text in written], gold)


def _written_letter(option: str, position: int) -> tuple[str, str]:
    """(the letter an option is written with, its text). Usually "(A)text"; some LogiQA options write "A text",
    "A? text" or no letter at all (then the option's position names it)."""
    if m := _BRACKETED.match(option):
        return m.group(1), option[m.end() :].strip()
    expected = chr(65 + position)
    if m := _BARE.match(option):
        if m.group(1) == expected:
            return expected, option[m.end() :].strip()
    return expected, option.strip()


def load_agieval(subsets: list[str] | None = None, path: str | None = None) -> list[Example]:
    """The AGIEval questions of the given subsets (all 8 by default); the files are validated as read."""
    names = check_tasks(subsets, list(SUBSETS), "AGIEval subset")
    source = local_folder(path, "agieval")
    if source is None:
        raise CotdistillError(f"no AGIEval data: {HOW_TO_GET}")
    if source.is_file():  # one subset's file: its name says which
        if source.stem not in SUBSETS:
            raise CotdistillError(f"{source}: not an AGIEval subset file (expected one of {', '.join(SUBSETS)}.jsonl)")
        files = {source.stem: source} if subsets is None or source.stem in names else {}
    else:
        files = {name: Path(source) / f"{name}.jsonl" for name in names}
        missing = [str(f) for f in files.values() if not f.is_file()]
        if missing and subsets is not None:
            raise CotdistillError(f"AGIEval file '{missing[0]}' is missing; {HOW_TO_GET}")
        files = {name: f for name, f in files.items() if f.is_file()}
    return [row_to_example(name, row, str(f), line) for name, f in files.items() for line, row in iter_jsonl(f)]
