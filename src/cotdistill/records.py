"""The record vocabulary every stage speaks, and atomic, validating JSONL I/O.

Records are pydantic models so that a malformed line is rejected with the field that is wrong; files are
written to a temporary name and renamed, so a crash never leaves a half-written artifact behind.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from .errors import RecordError

AnswerFormat = Literal["choice", "label", "number", "text"]
"""How an answer is written and compared:
choice: a lettered option "(A)"; label: one word out of `choices` (Yes/No, True/False, valid/invalid);
number: an integer or decimal; text: free text compared after whitespace normalisation (word sorting, Dyck)."""

Origin = Literal["teacher", "student", "rectified", "corrupted"]
ErrorType = Literal["calculation", "logical", "knowledge", "spurious", "unknown"]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Example(Record):
    """One question with its gold answer."""

    id: str = Field(min_length=1)
    task: str = Field(min_length=1)
    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    answer_format: AnswerFormat = "text"
    choices: list[str] = Field(default_factory=list)
    task_description: str = ""
    split: str = "train"
    # Other golds that are also right: BIG-bench items whose target_scores give several options full marks.
    alternatives: list[str] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _omit_empty_alternatives(self, handler: SerializerFunctionWrapHandler) -> dict:
        # Written only when there are some, so examples (and the stage hashes taken over them) stay as before.
        data = handler(self)
        if not self.alternatives:
            data.pop("alternatives", None)
        return data


class Rationale(Record):
    """One chain of thought for an example, graded or not yet."""

    id: str = Field(min_length=1)
    example_id: str = Field(min_length=1)
    text: str
    answer: str | None = None  # extracted final answer; None when nothing could be extracted
    correct: bool | None = None  # None until graded
    origin: Origin = "teacher"
    parent: str | None = None  # the rationale this one was rectified or corrupted from
    error_type: ErrorType | None = None
    model: str = ""
    sample_index: int = 0
    key_spans: list[tuple[int, int]] = Field(default_factory=list)  # character spans that differ from the solution
    # the character span of the step where a wrong path leaves the right one (the mistake site), when known;
    # the other key spans after it are locally valid steps from a wrong premise
    first_wrong_step: tuple[int, int] | None = None
    truncated: bool = False


class DualPair(Record):
    """A correct and a wrong rationale for the same question with similar paths (EDIT's dual CoTs).

    kind "positive" pairs an original correct CoT with its corruption (D+dual);
    kind "negative" pairs a rectified CoT with the original wrong one (D-dual).
    """

    id: str = Field(min_length=1)
    example_id: str = Field(min_length=1)
    chosen: Rationale
    rejected: Rationale
    kind: Literal["positive", "negative"]


def with_pair_sides(rationales: Iterable[Rationale], pairs: Iterable[DualPair]) -> list[Rationale]:
    """`rationales`, then every pair side not among them (the rectified and corrupted CoTs), each id once.

    Producers write this set, so rectified and corrupted CoTs are rationales every recipe sees, not only pair sides.
    """
    out = {r.id: r for r in rationales}
    for pair in pairs:
        for side in (pair.chosen, pair.rejected):
            out.setdefault(side.id, side)
    return list(out.values())


class WeightedSequence(Record):
    """One training sequence as every method compiles it: a prompt, a target, and per-token weights.

    Kept model-agnostic: a causal LM trains on prompt + target with the prompt masked; an encoder-decoder reads
    the prompt and predicts the target. `target_weights` may be negative (unlikelihood on wrong key tokens).
    `target_segments` labels each target token (0 rationale, 1 answer, by convention) so that losses that
    depend on parts of a sequence (CoPeD's combined rationale and answer loss) can be computed in the trainer.
    The trainer's batch counts groups: a group of sequences (EDIT's pair) is never split between batches.
    """

    id: str = Field(min_length=1)
    prompt_ids: list[int]
    target_ids: list[int] = Field(min_length=1)
    target_weights: list[float]
    target_segments: list[int] = Field(default_factory=list)  # empty: all segment 0
    instance_weight: float = 1.0
    method: str = ""
    example_id: str = ""
    task: str = ""  # the recipe's task this sequence trains; instance weightings compare within a task (CoPeD)
    group: str = ""  # sequences sharing a non-empty group always train in one batch (EDIT's pair sides)

    @model_validator(mode="after")
    def _lengths_match(self) -> WeightedSequence:
        if len(self.target_weights) != len(self.target_ids):
            raise ValueError(f"target_weights has {len(self.target_weights)} entries for {len(self.target_ids)} target tokens")
        if self.target_segments and len(self.target_segments) != len(self.target_ids):
            raise ValueError(f"target_segments has {len(self.target_segments)} entries for {len(self.target_ids)} target tokens")
        return self


R = TypeVar("R", bound=BaseModel)


def _field_of(error: ValidationError) -> tuple[str | None, str]:
    first = error.errors()[0]
    loc = ".".join(str(p) for p in first.get("loc", ())) or None
    return loc, first.get("msg", "invalid value")


def parse_record(model: type[R], data: object, path: str, line: int) -> R:
    """Validate one decoded JSON value as `model`, raising a RecordError that names path, line and field."""
    if not isinstance(data, dict):
        raise RecordError(path, line, None, f"expected a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        field, problem = _field_of(e)
        raise RecordError(path, line, field, problem) from None


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, object]]:
    """Yield (line number, decoded value) for each non-blank line; bad JSON raises a RecordError. A path ending in
    .gz is read through gzip (archived outputs)."""
    p = str(path)
    try:
        fh = gzip.open(p, "rt", encoding="utf-8") if p.endswith(".gz") else open(p, encoding="utf-8")
    except OSError as e:
        raise RecordError(p, 0, None, f"cannot read file: {e.strerror}") from None
    with fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw)
            except json.JSONDecodeError as e:
                raise RecordError(p, number, None, f"invalid JSON: {e.msg} at column {e.colno}") from None


def read_jsonl(path: str | os.PathLike, model: type[R]) -> list[R]:
    """Read and validate every line of a JSONL file; the whole file is checked before anything is returned."""
    return [parse_record(model, value, str(path), number) for number, value in iter_jsonl(path)]


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a file so that readers see either the old content or the new, never a partial one."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """atomic_write_text for binary content (images): temporary file, fsync, rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_json_line(record: BaseModel | dict) -> str:
    data = record.model_dump(mode="json") if isinstance(record, BaseModel) else record
    return json.dumps(data, ensure_ascii=False)


def write_jsonl(path: str | os.PathLike, records: Iterable[BaseModel | dict]) -> int:
    """Write records atomically; returns how many were written. A path ending in .gz is gzipped without a
    timestamp, so the same records give the same bytes (iter_jsonl reads it back)."""
    lines = [to_json_line(r) for r in records]
    text = "".join(line + "\n" for line in lines)
    if str(path).endswith(".gz"):
        atomic_write_bytes(path, gzip.compress(text.encode("utf-8"), mtime=0))
    else:
        atomic_write_text(path, text)
    return len(lines)


class JsonlJournal:
    """An append-only JSONL log for work in progress, so an interrupted stage resumes where it stopped.

    Each line is flushed and fsynced as it is written; on reopen, a torn last line (a crash mid-write)
    is dropped rather than treated as corrupt input.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = None

    def load(self) -> list[dict]:
        if not self.path.exists():
            return []
        good: list[dict] = []
        valid_bytes = 0
        with open(self.path, "rb") as fh:
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break  # torn write
                try:
                    good.append(json.loads(raw))
                except json.JSONDecodeError:
                    break
                valid_bytes += len(raw)
        if valid_bytes != self.path.stat().st_size:
            with open(self.path, "r+b") as fh:
                fh.truncate(valid_bytes)
        return good

    def append(self, record: BaseModel | dict) -> None:
        if self._fh is None:
            self._fh = open(self.path, "a", encoding="utf-8")
        self._fh.write(to_json_line(record) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> JsonlJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
