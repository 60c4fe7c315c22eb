"""`cotdistill import`: teacher rationales a user already has, as graded `Rationale` records in a teach folder.

Two inputs are read:

* the BBH release's outputs (`<task>_....json`: `{"outputs": [{"input", "prediction", "target"}]}`, one file
  per task, e.g. code-davinci-002's CoTs): `input` holds the 3-shot prompt and then the question, so the
  question is the text after the last "\\n\\nQ: " up to the closing "\\nA: ..." line; the k-th output whose
  question matches is the k-th official example with that question (two BBH tasks repeat a question);
* JSONL, one rationale per line: the example's `id` (or its `question` text, optionally with its `task`) and
  the `rationale`; `--field ours=theirs` maps columns as `data.fields` does. Several lines for one question
  are several samples.

Every rationale is graded with the strict rule and written where `cotdistill teach` writes: the import in
`imported/teacher.jsonl` (every matched rationale), and for the chosen split the teach folder's grade stage,
`rationales.jsonl` and `teach_report.json`; with `--test-split test`, the test questions' CoTs also go to
`test_rationales.jsonl`, the teacher's own answers that give a study its teacher row. `teach --stages rectify,corrupt,pair` in the same folder then
continues from the imported CoTs with a live teacher (run_teach uses `imported/teacher.jsonl` whenever
`generate` is not among the asked stages). A malformed line stops the import with its file, line and field
before anything is written; an unmatched one does too, unless `--skip-unmatched` lists it in
`imported/skipped.jsonl`.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..data.common import read_json_list
from ..errors import CotdistillError, RecordError
from ..records import Example, Rationale, iter_jsonl, read_jsonl, write_jsonl
from .stages import IMPORTED, TEST_ANSWERS, TeachSettings, grade_rationale, run_teach

_QUESTION_START = "\n\nQ: "
_ANSWER_START = "\nA:"


@dataclass
class Imported:
    """Rationales matched to examples, and the lines that matched none (when skipping is allowed)."""

    rationales: list[Rationale] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)


class _Matcher:
    """Finds the example a rationale belongs to, by id or by question text (within a task when given)."""

    def __init__(self, examples: Iterable[Example]):
        self.by_id: dict[str, Example] = {}
        self.by_text: dict[tuple[str | None, str], list[Example]] = defaultdict(list)
        for e in examples:
            self.by_id[e.id] = e
            self.by_text[(e.task, e.question.strip())].append(e)
            self.by_text[(None, e.question.strip())].append(e)

    def by_question(self, text: str, task: str | None) -> list[Example]:
        return self.by_text.get((task, text.strip()), [])


def question_of_release_input(text: str) -> str | None:
    """The question inside a BBH release output's `input`: after the last "Q: " block, before "A:"."""
    start = text.rfind(_QUESTION_START)
    body = text[start + len(_QUESTION_START) :] if start >= 0 else text.removeprefix("Q: ")
    end = body.rfind(_ANSWER_START)
    return body[:end].strip() if end >= 0 else None


def _task_of_release_file(path: Path, tasks: Iterable[str]) -> str | None:
    """The task a release file is for: the longest known task name its file name starts with."""
    found = [t for t in tasks if path.stem == t or path.stem.startswith(t + "_")]
    return max(found, key=len) if found else None


def read_release_outputs(path: Path, matcher: _Matcher, model: str, out: Imported, skip_unmatched: bool) -> None:
    """One BBH release outputs file: each output's question matched to the official example, in order."""
    outputs = read_json_list(path, "outputs", "teacher outputs", '{"outputs": [{"input", "prediction"}]}')
    task = _task_of_release_file(path, {e.task for e in matcher.by_id.values()})
    used: Counter[str] = Counter()
    for index, row in enumerate(outputs):
        where = f"{path}: outputs[{index}]"
        for name in ("input", "prediction"):
            if not isinstance(row, dict) or not isinstance(row.get(name), str):
                raise CotdistillError(f"{where}: field '{name}': missing or not a string")
        question = question_of_release_input(row["input"])
        candidates = matcher.by_question(question, task) if question else []
        if not candidates or used[question] >= len(candidates):  # type: ignore[index]
            problem = "no question after the last 'Q: '" if not question else "matches no official example"
            if not skip_unmatched:
                raise CotdistillError(f"{where}: field 'input': {problem} (use --skip-unmatched to list and skip it)")
            out.skipped.append({"file": str(path), "item": index, "reason": problem})
            continue
        example = candidates[used[question]]  # type: ignore[index]
        used[question] += 1  # type: ignore[index]
        out.rationales.append(Rationale(id=f"{example.id}#{model}/0", example_id=example.id,
                                        text=row["prediction"].strip(), origin="teacher", model=model))


def read_jsonl_rationales(path: Path, matcher: _Matcher, model: str, fields: dict[str, str], out: Imported,
                          skip_unmatched: bool) -> None:
    """JSONL lines {id | question [, task], rationale}; columns renamed by `fields` (ours -> theirs)."""
    column = {ours: fields.get(ours, ours) for ours in ("id", "question", "task", "rationale")}
    samples: Counter[str] = Counter()
    for line, row in iter_jsonl(path):
        if not isinstance(row, dict):
            raise RecordError(str(path), line, None, f"expected a JSON object, got {type(row).__name__}")
        text = row.get(column["rationale"])
        if not isinstance(text, str) or not text.strip():
            raise RecordError(str(path), line, column["rationale"], "missing or not a string")
        if row.get(column["id"]) is not None:
            key, found = column["id"], [matcher.by_id[row[column["id"]]]] if row[column["id"]] in matcher.by_id else []
        elif isinstance(row.get(column["question"]), str):
            key, found = column["question"], matcher.by_question(row[column["question"]], row.get(column["task"]))
        else:
            raise RecordError(str(path), line, column["id"], f"missing (give the example's id or its '{column['question']}')")
        if not found:
            if not skip_unmatched:
                raise RecordError(str(path), line, key, "matches no example (use --skip-unmatched to list and skip it)")
            out.skipped.append({"file": str(path), "line": line, "field": key, "reason": "matches no example"})
            continue
        example = found[0]  # a question text shared by several examples goes to the first
        index = samples[example.id]
        samples[example.id] += 1
        out.rationales.append(Rationale(id=f"{example.id}#{model}/{index}", example_id=example.id, text=text.strip(),
                                        origin="teacher", model=model, sample_index=index))


def read_teacher_files(paths: list[Path], examples: list[Example], model: str, fields: dict[str, str] | None = None,
                       skip_unmatched: bool = False) -> Imported:
    """Rationales from files or folders (a folder: every release outputs .json and every .jsonl in it)."""
    matcher = _Matcher(examples)
    out = Imported()
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix in (".json", ".jsonl") and not f.stem.endswith("_eval_metrics"))
        elif p.is_file():
            files.append(p)
        else:
            raise CotdistillError(f"teacher outputs '{p}' do not exist")
    for f in files:
        if f.suffix == ".json":
            read_release_outputs(f, matcher, model, out, skip_unmatched)
        else:
            read_jsonl_rationales(f, matcher, model, fields or {}, out, skip_unmatched)
    if not out.rationales:
        raise CotdistillError(f"no rationale in {', '.join(map(str, paths))} matched an example")
    return out


def correct_table(graded: list[Rationale], examples: dict[str, Example]) -> str:
    """Per task: rationales, how many the strict rule grades correct, and the share; then the total."""
    per_task: dict[str, list[bool]] = defaultdict(list)
    for r in graded:
        per_task[examples[r.example_id].task].append(bool(r.correct))
    lines = ["| task | rationales | correct | % |", "|---|---:|---:|---:|"]
    for task, marks in sorted(per_task.items()):
        lines.append(f"| {task} | {len(marks)} | {sum(marks)} | {100 * sum(marks) / len(marks):.1f} |")
    total = [m for marks in per_task.values() for m in marks]
    lines.append(f"| **all** | {len(total)} | **{sum(total)}** | {100 * sum(total) / len(total):.2f} |")
    return "\n".join(lines)


def import_teacher_outputs(run_dir: str | Path, paths: list[Path], examples: list[Example], model: str, *,
                           fields: dict[str, str] | None = None, skip_unmatched: bool = False,
                           split: str | None = "train", test_split: str | None = None) -> tuple[list[Rationale], Imported]:
    """Read, match and grade the rationales, then write them into the teach folder `run_dir` (see the module
    docstring). With `test_split`, the first rationale of each question of that split also goes to
    `test_rationales.jsonl`: the teacher's own answers, a study's teacher row (as `teach --test-split` writes).
    Returns the graded rationales and what was read; nothing is written if reading fails."""
    if test_split is not None and (split is None or test_split == split):
        raise CotdistillError(f"--test-split {test_split}: the teacher's test answers need a split apart from the "
                              f"training split ({split or 'all'})")
    imported = read_teacher_files(paths, examples, model, fields, skip_unmatched)
    by_id = {e.id: e for e in examples}
    graded = [grade_rationale(r, by_id[r.example_id]) for r in imported.rationales]
    target = Path(run_dir) / IMPORTED
    write_jsonl(target.parent / "skipped.jsonl", imported.skipped)
    write_jsonl(target, graded)
    # The teach layout (grade stage, rationales.jsonl) gets the chosen split only: CoTs on test questions must
    # never train a student, so they stay in imported/teacher.jsonl.
    kept = [e for e in examples if split is None or e.split == split]
    run_teach(run_dir, kept, None, TeachSettings(extraction="strict"), stages=("grade",))
    if test_split is not None:
        held_out = {e.id for e in examples if e.split == test_split}
        answers = [r for r in graded if r.example_id in held_out and r.sample_index == 0]
        write_jsonl(Path(run_dir) / TEST_ANSWERS, answers)
    return graded, imported


def add_import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="BBH release outputs (.json, or their folder) or JSONL rationales")
    p.add_argument("--model", required=True, help="the teacher's name, recorded in every rationale")
    p.add_argument("--run-dir", default="runs/teach", help="the teach folder to write (as `cotdistill teach`)")
    p.add_argument("--data", choices=["bbh", "agieval", "arc", "bbsub", "file"], default="bbh",
                   help="the examples to match against (default: official BBH)")
    p.add_argument("--data-path", help="data.path for --data (a BBH folder, or your .jsonl with --data file)")
    p.add_argument("--split", default="train",
                   help="split written to the teach folder (default train; 'all' for every split)")
    p.add_argument("--test-split", help="also write this split's CoTs (e.g. test) as the teacher's own answers, "
                                        "test_rationales.jsonl: a study's teacher row; they never train a student")
    p.add_argument("--field", action="append", default=[], metavar="OURS=THEIRS",
                   help="JSONL column names: id, question, task, rationale (repeatable)")
    p.add_argument("--skip-unmatched", action="store_true", help="skip lines that match no example, and list them")


def import_command(args: argparse.Namespace) -> None:
    from ..config import DataConfig
    from ..data import load_examples

    fields = {}
    for item in args.field:
        ours, sep, theirs = item.partition("=")
        if not sep or ours not in ("id", "question", "task", "rationale"):
            raise CotdistillError(f"--field {item!r}: expected OURS=THEIRS with OURS one of id, question, task, rationale")
        fields[ours] = theirs
    examples = load_examples(DataConfig(source=args.data, path=args.data_path, split=None))
    split = None if args.split == "all" else args.split
    graded, imported = import_teacher_outputs(args.run_dir, [Path(p) for p in args.inputs], examples, args.model,
                                              fields=fields, skip_unmatched=args.skip_unmatched, split=split,
                                              test_split=args.test_split)
    print(correct_table(graded, {e.id: e for e in examples}))
    right = sum(bool(r.correct) for r in graded)
    print(f"\n{right:,} of {len(graded):,} imported rationales graded correct (strict rule)")
    if imported.skipped:
        print(f"skipped {len(imported.skipped)} unmatched lines, listed in {Path(args.run_dir) / IMPORTED.parent / 'skipped.jsonl'}")
    print(f"wrote {Path(args.run_dir) / IMPORTED} and the teach folder {args.run_dir} (split {args.split})")
    if args.test_split:
        answers = read_jsonl(Path(args.run_dir) / TEST_ANSWERS, Rationale)
        right = sum(bool(r.correct) for r in answers)
        print(f"wrote {Path(args.run_dir) / TEST_ANSWERS}: the teacher's answers to {len(answers):,} {args.test_split} "
              f"questions, {right:,} correct ({100 * right / max(1, len(answers)):.2f}%)")
