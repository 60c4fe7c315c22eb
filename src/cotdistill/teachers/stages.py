"""The teacher stages as functions over artifacts in a folder: generate -> grade -> rectify / corrupt -> pair.

Each stage writes its outputs atomically and a `report.json` with how many items succeeded, failed and were
retried, plus the teacher usage it caused (requests sent, cache hits, HTTP retries, tokens). Work in progress
goes to a journal (`journal.jsonl`) after every chunk or attempt round, and every teacher answer goes to the
cache as it arrives, so an interrupted stage resumes where it stopped and pays for nothing twice.

`run_teach` chains the stages in a `RunFolder`: each stage's folder is named by a hash of the teacher's
identity, its inputs and its settings, so a finished stage is never recomputed.

Artifacts: generate/teacher.jsonl (Rationale); grade/graded.jsonl, d_plus.jsonl, d_minus.jsonl;
rectify/rectified.jsonl (D-+), rectify/failed.jsonl; corrupt/corrupted.jsonl (D+-), corrupt/failed.jsonl;
pair/dual.jsonl, d_plus_dual.jsonl, d_minus_dual.jsonl (DualPair). At the top of the run folder, for studies:
rationales.jsonl (graded teacher CoTs, then the rectified and corrupted ones) and pairs.jsonl.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

from ..errors import CotdistillError
from ..grading import extract_flexible, extract_strict, is_correct
from ..runfolder import RunFolder, file_digest, fingerprint, log
from ..records import DualPair, Example, JsonlJournal, Rationale, atomic_write_text, read_jsonl, write_jsonl
from .base import Demonstration, Teacher

STAGES = ("generate", "grade", "rectify", "corrupt", "pair")
IMPORTED = Path("imported") / "teacher.jsonl"  # `cotdistill import` writes here; it stands in for generate
TEST_ANSWERS = "test_rationales.jsonl"  # the teacher's answers to held-out questions: a study's teacher row
Extraction = Literal["strict", "flexible"]


@dataclass
class StageReport:
    """Counts of one stage. succeeded/failed: CoTs written/truncated (generate), correct/wrong (grade),
    accepted/never accepted within the budget (rectify, corrupt), pairs made/items left unpaired (pair).
    retried: HTTP retries (generate), item attempts after the first (rectify, corrupt). usage: teacher
    requests, cache hits, HTTP retries and failures, prompt and completion tokens."""

    stage: str
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    details: dict = field(default_factory=dict)
    usage: dict = field(default_factory=dict)
    reused: bool = False  # finished by an earlier run: its counts are that run's, and this run asked nothing

    def line(self) -> str:
        if self.reused:
            return (f"[{self.stage}] done in an earlier run (succeeded {self.succeeded}, failed {self.failed}); "
                    f"this run: requests 0, cached 0")
        use = self.usage
        tail = (f"; requests {use.get('requests', 0)}, cached {use.get('cached', 0)}, "
                f"http retries {use.get('retries', 0)}, tokens {use.get('prompt_tokens', 0)}+"
                f"{use.get('completion_tokens', 0)}") if use else ""
        extra = "".join(f", {k} {v}" for k, v in self.details.items())
        return f"[{self.stage}] succeeded {self.succeeded}, failed {self.failed}, retried {self.retried}{extra}{tail}"

    def save(self, folder: Path) -> None:
        atomic_write_text(folder / "report.json", json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> StageReport:
        return cls(**json.loads((folder / "report.json").read_text()))


@contextmanager
def _usage(teacher: Teacher, stage: str) -> Iterator[Counter]:
    """The teacher's request accounting for this block, if it has any (the scripted teacher has none)."""
    generator = getattr(teacher, "generator", None)
    if generator is not None and hasattr(generator, "accounting"):
        with generator.accounting(stage) as counts:
            yield counts
    else:
        with nullcontext(Counter()) as counts:
            yield counts


def grade_rationale(rationale: Rationale, example: Example, extraction: Extraction = "strict") -> Rationale:
    """The rationale with its extracted answer and correctness filled in."""
    extract = extract_strict if extraction == "strict" else extract_flexible
    answer = extract(rationale.text, example)
    return rationale.model_copy(update={"answer": answer, "correct": is_correct(answer, example)})


def _by_id(examples: Sequence[Example]) -> dict[str, Example]:
    return {e.id: e for e in examples}


def _example_of(index: dict[str, Example], r: Rationale, where: str) -> Example:
    try:
        return index[r.example_id]
    except KeyError:
        raise CotdistillError(f"{where}: rationale {r.id} refers to unknown example {r.example_id}") from None


# ---- generate ----------------------------------------------------------------------------------------------


def generate_stage(teacher: Teacher, examples: Sequence[Example], folder: Path, *, n: int = 1,
                   chunk_size: int = 64, stage: str = "generate") -> StageReport:
    """n rationales per example -> teacher.jsonl. Truncated completions count as failed (raise max_tokens
    and rerun: only they are requested again)."""
    report = StageReport(stage)
    with _usage(teacher, stage) as usage, JsonlJournal(folder / "journal.jsonl") as journal:
        done = {row["example_id"]: [Rationale.model_validate(r) for r in row["rationales"]] for row in journal.load()}
        pending = [e for e in examples if e.id not in done]
        for start in range(0, len(pending), chunk_size):
            chunk = pending[start : start + chunk_size]
            for example, rationales in zip(chunk, teacher.solve(chunk, n)):
                done[example.id] = rationales
                journal.append({"example_id": example.id, "rationales": [r.model_dump(mode="json") for r in rationales]})
    out = [r for e in examples for r in done[e.id]]
    write_jsonl(folder / "teacher.jsonl", out)
    report.succeeded = sum(not r.truncated and bool(r.text) for r in out)
    report.failed = len(out) - report.succeeded
    report.retried = usage.get("retries", 0)
    report.details = {"truncated": sum(r.truncated for r in out), "empty": sum(not r.text for r in out)}
    report.usage = dict(usage)
    return report


def imported_stage(examples: Sequence[Example], imported_file: Path, folder: Path) -> StageReport:
    """The imported rationales of these examples -> teacher.jsonl (what generate would have written)."""
    wanted = {e.id for e in examples}
    rationales = read_jsonl(imported_file, Rationale)
    kept = [r for r in rationales if r.example_id in wanted]
    write_jsonl(folder / "teacher.jsonl", kept)
    covered = {r.example_id for r in kept}
    return StageReport("imported", succeeded=len(kept), details={"other_examples": len(rationales) - len(kept),
                                                                 "examples_without": len(wanted - covered)})


def answer_stage(teacher: Teacher, examples: Sequence[Example], folder: Path, *, extraction: Extraction = "strict",
                 chunk_size: int = 64) -> StageReport:
    """The teacher's own CoT for each held-out (test) question, graded -> answers.jsonl: a study's teacher row."""
    report = generate_stage(teacher, examples, folder, n=1, chunk_size=chunk_size, stage="answer")
    index = _by_id(examples)
    graded = [grade_rationale(r, _example_of(index, r, "answer"), extraction)
              for r in read_jsonl(folder / "teacher.jsonl", Rationale)]
    write_jsonl(folder / "answers.jsonl", graded)
    report.details["correct"] = sum(bool(r.correct) for r in graded)
    return report


# ---- grade -------------------------------------------------------------------------------------------------


def grade_stage(examples: Sequence[Example], rationales_file: Path, folder: Path, *,
                extraction: Extraction = "strict") -> StageReport:
    """Extract and score every rationale -> graded.jsonl, d_plus.jsonl (correct), d_minus.jsonl (wrong)."""
    index = _by_id(examples)
    graded = [grade_rationale(r, _example_of(index, r, str(rationales_file)), extraction)
              for r in read_jsonl(rationales_file, Rationale)]
    d_plus = [r for r in graded if r.correct]
    d_minus = [r for r in graded if not r.correct]
    write_jsonl(folder / "graded.jsonl", graded)
    write_jsonl(folder / "d_plus.jsonl", d_plus)
    write_jsonl(folder / "d_minus.jsonl", d_minus)
    return StageReport("grade", succeeded=len(d_plus), failed=len(d_minus),
                       details={"no_answer": sum(r.answer is None for r in graded)})


# ---- rectify and corrupt: retry rounds ----------------------------------------------------------------------


def _retry_rounds(
    stage: str, teacher: Teacher, items: list[tuple[Example, Rationale]], folder: Path, budget: int,
    ask: Callable[[list[tuple[Example, Rationale]], int], list[Rationale]],
    accept: Callable[[Example, Rationale, Rationale], bool], extraction: Extraction, output: str,
) -> StageReport:
    """Ask for every item, keep the answers `accept` likes, ask again for the rest, up to `budget` attempts.
    `accept` never takes a truncated CoT: one cut at max_tokens is not a finished rewrite, whatever it states.

    The journal holds one line per finished round, so a resumed stage skips the rounds already done. Items
    still unaccepted after the budget are failed (listed in failed.jsonl), never an error.
    """
    if budget < 1:
        raise CotdistillError(f"{stage}: the attempt budget must be at least 1, got {budget}")
    accepted: dict[str, Rationale] = {}
    attempts_done = 0
    report = StageReport(stage)
    with _usage(teacher, stage) as usage, JsonlJournal(folder / "journal.jsonl") as journal:
        for row in journal.load():
            attempts_done = row["attempt"] + 1
            for r in row["accepted"]:
                accepted[r["parent"]] = Rationale.model_validate(r)
        for attempt in range(attempts_done, budget):
            pending = [(e, r) for e, r in items if r.id not in accepted]
            if not pending:
                break
            new = {}
            for (example, parent), result in zip(pending, ask(pending, attempt)):
                result = grade_rationale(result, example, extraction)
                if result.parent != parent.id:
                    result = result.model_copy(update={"parent": parent.id})
                if accept(example, parent, result):
                    new[parent.id] = result
            accepted.update(new)
            journal.append({"attempt": attempt, "accepted": [r.model_dump(mode="json") for r in new.values()]})
    done = [accepted[r.id] for _, r in items if r.id in accepted]
    failed = [r.id for _, r in items if r.id not in accepted]
    write_jsonl(folder / output, done)
    atomic_write_text(folder / "failed.jsonl", "".join(json.dumps({"id": i}) + "\n" for i in failed))
    report.succeeded, report.failed = len(done), len(failed)
    report.retried = _rounds_retried(folder / "journal.jsonl", items)
    report.usage = dict(usage)
    return report


def _rounds_retried(journal_path: Path, items: list[tuple[Example, Rationale]]) -> int:
    """How many item-attempts were retries (attempts after the first), recounted from the journal."""
    rows = JsonlJournal(journal_path).load()
    remaining = len(items)
    retried = 0
    for row in rows:
        if row["attempt"] > 0:
            retried += remaining
        remaining -= len(row["accepted"])
    return retried


def rectify_stage(teacher: Teacher, examples: Sequence[Example], d_minus_file: Path, folder: Path, *,
                  budget: int = 3, extraction: Extraction = "strict") -> StageReport:
    """For each wrong rationale, a correct one (answer hint), retried until correct -> rectified.jsonl (D-+)."""
    index = _by_id(examples)
    items = [(_example_of(index, r, str(d_minus_file)), r) for r in read_jsonl(d_minus_file, Rationale)]
    return _retry_rounds(
        "rectify", teacher, items, folder, budget,
        ask=lambda pending, attempt: teacher.rectify(pending, attempt=attempt),
        accept=lambda example, parent, result: bool(result.correct) and not result.truncated,
        extraction=extraction, output="rectified.jsonl",
    )


def _demonstrations_for(item: tuple[Example, Rationale], pool: Sequence[Demonstration], k: int,
                        rng: random.Random) -> list[Demonstration]:
    """Up to k right/wrong pairs from the data, same task first, never from the item's own question."""
    example = item[0]
    same = [d for d in pool if d.example.task == example.task and d.example.id != example.id]
    other = [d for d in pool if d.example.task != example.task]
    rng.shuffle(same)
    rng.shuffle(other)
    return (same + other)[:k]


def corrupt_stage(teacher: Teacher, examples: Sequence[Example], d_plus_file: Path, folder: Path, *,
                  demonstrations: Sequence[Demonstration] = (), shots: int = 2, budget: int = 3, seed: int = 0,
                  extraction: Extraction = "strict") -> StageReport:
    """For each correct rationale, a similar one with a wrong answer, retried until its answer is wrong and
    its text differs -> corrupted.jsonl (D+-). In-context pairs are drawn from `demonstrations` (the data's
    own rectified/wrong pairs), afresh for each attempt."""
    index = _by_id(examples)
    items = [(_example_of(index, r, str(d_plus_file)), r) for r in read_jsonl(d_plus_file, Rationale)]

    def ask(pending: list[tuple[Example, Rationale]], attempt: int) -> list[Rationale]:
        demos = [_demonstrations_for(item, demonstrations, shots,
                                     random.Random(fingerprint([seed, item[1].id, attempt]))) for item in pending]
        return teacher.corrupt(pending, attempt=attempt, demonstrations=demos if shots else ())

    def accept(example: Example, parent: Rationale, result: Rationale) -> bool:
        return result.answer is not None and not result.correct and not result.truncated \
            and result.answer != parent.answer and " ".join(result.text.split()) != " ".join(parent.text.split())

    return _retry_rounds("corrupt", teacher, items, folder, budget, ask, accept, extraction, "corrupted.jsonl")


def demonstrations_from(examples: Sequence[Example], rectified_file: Path, d_minus_file: Path) -> list[Demonstration]:
    """The D-dual pairs (rectified right, original wrong) as in-context demonstrations for corruption."""
    index = _by_id(examples)
    wrong = {r.id: r for r in read_jsonl(d_minus_file, Rationale)}
    return [Demonstration(index[r.example_id], r, wrong[r.parent])
            for r in read_jsonl(rectified_file, Rationale) if r.parent in wrong and r.example_id in index]


# ---- pair --------------------------------------------------------------------------------------------------


def pair_stage(d_plus_file: Path, corrupted_file: Path, d_minus_file: Path, rectified_file: Path,
               folder: Path) -> StageReport:
    """Dual CoTs: D+dual = (correct, its corruption), D-dual = (rectified, the original wrong one)."""
    d_plus = {r.id: r for r in read_jsonl(d_plus_file, Rationale)}
    d_minus = {r.id: r for r in read_jsonl(d_minus_file, Rationale)}
    positive = [DualPair(id=f"{c.parent}|{c.id}", example_id=c.example_id, chosen=d_plus[c.parent], rejected=c,
                         kind="positive") for c in read_jsonl(corrupted_file, Rationale) if c.parent in d_plus]
    negative = [DualPair(id=f"{r.id}|{r.parent}", example_id=r.example_id, chosen=r, rejected=d_minus[r.parent],
                         kind="negative") for r in read_jsonl(rectified_file, Rationale) if r.parent in d_minus]
    write_jsonl(folder / "d_plus_dual.jsonl", positive)
    write_jsonl(folder / "d_minus_dual.jsonl", negative)
    write_jsonl(folder / "dual.jsonl", positive + negative)
    return StageReport("pair", succeeded=len(positive) + len(negative),
                       failed=(len(d_plus) - len(positive)) + (len(d_minus) - len(negative)),
                       details={"d_plus_dual": len(positive), "d_minus_dual": len(negative)})


# ---- the chain ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeachSettings:
    n: int = 1  # CoTs per question (MoRSD samples several)
    rectify_budget: int = 3
    corrupt_budget: int = 3
    corrupt_shots: int = 2  # in-context right/wrong pairs per corruption prompt
    extraction: Extraction = "strict"
    seed: int = 0
    chunk_size: int = 64


_SECRET_NAMES = ("key", "token", "secret", "password", "auth")


def teacher_identity(teacher: Teacher, tasks: Sequence[str] = ()) -> dict:
    """What a teacher's outputs depend on: its own `identity()`, else its public plain settings.

    This lands in stage parameters, which are written to the run folder, so attributes named like secrets
    are left out.
    """
    if hasattr(teacher, "identity"):
        return teacher.identity(tasks)
    plain = (str, int, float, bool, type(None), dict, list, tuple)
    return {"class": type(teacher).__name__,
            **{k: v for k, v in sorted(vars(teacher).items())
               if not k.startswith("_") and isinstance(v, plain) and not any(s in k.lower() for s in _SECRET_NAMES)}}


def run_teach(run_dir: str | Path, examples: Sequence[Example], teacher: Teacher | None,
              settings: TeachSettings = TeachSettings(), stages: Sequence[str] = STAGES,
              test_examples: Sequence[Example] = ()) -> dict[str, StageReport]:
    """Run the chosen stages (in order, with the ones they need) in a run folder; returns their reports.

    Finished stages are skipped (their report is read back); interrupted ones resume. The reports are also
    collected in <run_dir>/teach_report.json. When `generate` is not asked for and the folder holds imported
    rationales (`cotdistill import`), they stand in for it; `teacher` may then be None for `grade` alone. With
    `test_examples`, an "answer" stage has the teacher answer them too (one CoT each, graded) into
    <run_dir>/test_rationales.jsonl, which gives a study its teacher row.
    """
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise CotdistillError(f"unknown teacher stages {sorted(unknown)} (known: {', '.join(STAGES)})")
    if not examples:
        raise CotdistillError("no examples to teach")
    wanted = set(stages)
    needs = {"pair": {"rectify", "corrupt"}, "corrupt": {"grade", "rectify"}, "rectify": {"grade"},
             "grade": {"generate"}}
    for stage in ("pair", "corrupt", "rectify", "grade"):
        if stage in wanted:
            wanted |= needs[stage]
    run = RunFolder(run_dir)
    examples_file = Path(run_dir) / "teach_examples.jsonl"
    if not examples_file.exists() or read_jsonl(examples_file, Example) != list(examples):
        write_jsonl(examples_file, examples)
    tasks = sorted({e.task for e in examples})
    imported = Path(run_dir) / IMPORTED
    use_imported = "generate" not in stages and imported.is_file()
    if teacher is None and (not use_imported or wanted - {"generate", "grade"}):
        raise CotdistillError("these teacher stages need a teacher")
    base = {"teacher": teacher_identity(teacher, tasks) if teacher is not None else None,
            "examples": file_digest(examples_file)}
    s = settings
    reports: dict[str, StageReport] = {}

    def step(name: str, params: dict, work: Callable[[Path], StageReport]) -> Path:
        ran = False

        def body(folder: Path) -> None:
            nonlocal ran
            report = work(folder)
            report.save(folder)
            log(report.line())
            ran = True

        folder = run.stage(name, params, body)
        reports[name] = replace(StageReport.load(folder), reused=not ran)
        return folder

    if use_imported:
        gen = step("imported", {"input": file_digest(imported), "examples": base["examples"]},
                   lambda f: imported_stage(examples, imported, f))
    else:
        gen = step("generate", {**base, "n": s.n},
                   lambda f: generate_stage(teacher, examples, f, n=s.n, chunk_size=s.chunk_size))
    if "grade" not in wanted:
        return _summary(run_dir, reports)
    grade = step("grade", {"input": file_digest(gen / "teacher.jsonl"), "extraction": s.extraction},
                 lambda f: grade_stage(examples, gen / "teacher.jsonl", f, extraction=s.extraction))
    if "rectify" in wanted:
        rect = step("rectify", {**base, "input": file_digest(grade / "d_minus.jsonl"), "budget": s.rectify_budget,
                                "extraction": s.extraction},
                    lambda f: rectify_stage(teacher, examples, grade / "d_minus.jsonl", f, budget=s.rectify_budget,
                                            extraction=s.extraction))
    if "corrupt" in wanted:
        demos_digest = file_digest(rect / "rectified.jsonl")
        corr = step("corrupt", {**base, "input": file_digest(grade / "d_plus.jsonl"), "demos": demos_digest,
                                "budget": s.corrupt_budget, "shots": s.corrupt_shots, "seed": s.seed,
                                "extraction": s.extraction},
                    lambda f: corrupt_stage(
                        teacher, examples, grade / "d_plus.jsonl", f,
                        demonstrations=demonstrations_from(examples, rect / "rectified.jsonl", grade / "d_minus.jsonl"),
                        shots=s.corrupt_shots, budget=s.corrupt_budget, seed=s.seed, extraction=s.extraction))
    if "pair" in wanted:
        inputs = [grade / "d_plus.jsonl", corr / "corrupted.jsonl", grade / "d_minus.jsonl", rect / "rectified.jsonl"]
        pair = step("pair", {"inputs": [file_digest(p) for p in inputs]}, lambda f: pair_stage(*inputs, f))
    # The latest graded CoTs and pairs also sit at the top of the run folder, where a study reads them; the
    # rectified and corrupted CoTs are rationales there too, so every recipe can pick them by origin.
    made = [*([rect / "rectified.jsonl"] if "rectify" in wanted else []),
            *([corr / "corrupted.jsonl"] if "corrupt" in wanted else [])]
    rationales = [r for source in [grade / "graded.jsonl", *made] for r in read_jsonl(source, Rationale)]
    write_jsonl(Path(run_dir) / "rationales.jsonl", rationales)
    latest = {**({"pairs.jsonl": pair / "dual.jsonl"} if "pair" in wanted else {})}
    if test_examples:
        test_file = Path(run_dir) / "teach_test_examples.jsonl"
        write_jsonl(test_file, test_examples)
        answer = step("answer", {**base, "examples": file_digest(test_file), "extraction": s.extraction},
                      lambda f: answer_stage(teacher, test_examples, f, extraction=s.extraction, chunk_size=s.chunk_size))
        latest[TEST_ANSWERS] = answer / "answers.jsonl"
    for name, source in latest.items():
        atomic_write_text(Path(run_dir) / name, source.read_text(encoding="utf-8"))
    return _summary(run_dir, reports)


def _summary(run_dir: str | Path, reports: dict[str, StageReport]) -> dict[str, StageReport]:
    atomic_write_text(Path(run_dir) / "teach_report.json",
                      json.dumps({k: asdict(v) for k, v in reports.items()}, indent=2) + "\n")
    return reports
