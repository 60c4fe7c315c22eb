"""The lab's shared machinery: a family's contract, worked solutions as step lists, faults and phrasings.

A family turns a question into a *problem* (a small structured object), and works the problem step by step
into a list of sentences. A mistake is a `Fault`: at one step the family applies a perturbed operation instead
of the right one and then keeps reasoning correctly from the perturbed state, so the mistake propagates to the
answer the way a real one would. Because the right and the wrong path are rendered from the same phrasing
choices, the steps they share are identical strings and the steps that differ can be located exactly.
"""

from __future__ import annotations

import random
import zlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import CotdistillError
from ..grading import final_answer_sentence
from ..records import AnswerFormat, ErrorType, Example


MISTAKE_TYPES: tuple[ErrorType, ...] = ("calculation", "logical", "knowledge")


class LabParseError(CotdistillError):
    """A question that does not have the shape of the family's questions."""


@dataclass(frozen=True)
class Fault:
    """One scripted mistake: which step goes wrong, how it is classified, and a salt that picks the detail."""

    step: int
    error_type: ErrorType
    salt: int


@dataclass(frozen=True)
class Worked:
    """A worked solution: the reasoning sentences in order and the answer they arrive at."""

    steps: list[str]
    answer: str


@dataclass(frozen=True)
class Puzzle:
    """A generated question in its BBH format, with the problem object it was rendered from."""

    problem: Any
    question: str
    answer: str
    answer_format: AnswerFormat
    choices: list[str] = field(default_factory=list)


def stable_int(*key: object) -> int:
    """A hash of `key` that is the same in every process (Python's hash() of str is salted per process)."""
    return zlib.crc32("\x1f".join(map(str, key)).encode("utf-8"))


class Style:
    """Deterministic phrasing choices, keyed by what is being said rather than by call order.

    Keying by (slot, position) means that the right path and a perturbed path pick the same template for the
    same step even when the perturbed path has a different number of steps.
    """

    def __init__(self, seed: int):
        self.seed = seed

    def pick(self, options: Sequence[str], *key: object) -> str:
        return options[stable_int(self.seed, *key) % len(options)]


def fault_rng(fault: Fault) -> random.Random:
    return random.Random(stable_int("fault", fault.step, fault.error_type, fault.salt))


class Family(ABC):
    """A procedural task family in one of BBH's formats.

    Subclasses define: `generate` (a seeded question of a given difficulty), `parse` (a question text back to
    the problem, so that real BBH questions and generated ones go through the same solver), `work` (the step
    list, optionally with a fault) and `fault_steps` (which steps can carry which kind of mistake); they may
    override `step_loads` (how demanding each step is, for question-dependent mistakes).
    """

    name: ClassVar[str]
    bbh_subtasks: ClassVar[tuple[str, ...]] = ()
    mistake_types: ClassVar[Mapping[ErrorType, str]]  # the types this family can make, each with what it does
    task_description: ClassVar[str]
    default_difficulty: ClassVar[dict[str, int]]
    hard_difficulty: ClassVar[dict[str, int]]  # an out-of-distribution setting for generalisation tests

    @abstractmethod
    def generate(self, rng: random.Random, **difficulty: int) -> Puzzle: ...

    @abstractmethod
    def parse(self, example: Example) -> Any: ...

    @abstractmethod
    def work(self, problem: Any, style: Style, fault: Fault | None = None) -> Worked: ...

    @abstractmethod
    def fault_steps(self, problem: Any, error_type: ErrorType) -> list[int]:
        """Indices of the steps of `work(problem)` where a mistake of this type can be made."""

    def step_loads(self, problem: Any) -> list[float]:
        """How demanding each step of the clean solution is (0: nothing to get wrong), one number per step.

        The scripted teacher's per-step slips (`ScriptedTeacher.slip_rate`) make a question's chance of a mistake
        grow with the sum of its loads, and put the mistake on a step with odds proportional to its load. The
        default is 1 for every step where some mistake can be made; families weigh their hard patterns more.
        """
        sites = {step for error_type in self.mistake_types for step in self.fault_steps(problem, error_type)}
        return [float(i in sites) for i in range(len(self.work(problem, Style(0)).steps))]

    def puzzle(self, problem: Any, question: str, answer_format: AnswerFormat,
               choices: Sequence[str] = ()) -> Puzzle:
        """A generated question with its gold answer, which is the clean solution's answer."""
        return Puzzle(problem, question, self.work(problem, Style(0)).answer, answer_format, list(choices))

    def subtask_for(self, difficulty: dict[str, int]) -> str:
        """The BBH subtask name a generated question of this difficulty is filed under."""
        return self.name

    def difficulty(self, **overrides: int) -> dict[str, int]:
        unknown = set(overrides) - set(self.default_difficulty)
        if unknown:
            raise CotdistillError(
                f"family {self.name}: unknown difficulty knob(s) {sorted(unknown)}; "
                f"known: {sorted(self.default_difficulty)}"
            )
        return {**self.default_difficulty, **overrides}


# ---- rendering ---------------------------------------------------------------------------------------------

OPENERS = ("Let's think step by step.", "Let's work through it step by step.", "Let's reason it out.")


@dataclass(frozen=True)
class Rendered:
    text: str
    step_spans: list[tuple[int, int]]  # character span of every step, the conclusion included
    steps: list[str]


def render(worked: Worked, style: Style) -> Rendered:
    """Join the steps into one CoT and remember where each step sits, so spans are exact by construction."""
    steps = [*worked.steps, final_answer_sentence(worked.answer)]
    opener = style.pick(OPENERS, "opener")
    pieces = [opener]
    spans: list[tuple[int, int]] = []
    cursor = len(opener)
    for step in steps:
        cursor += 1  # the separating space
        spans.append((cursor, cursor + len(step)))
        pieces.append(step)
        cursor += len(step)
    return Rendered(" ".join(pieces), spans, steps)


def _positional_moves(mine: list[str], other: list[str]) -> list[str]:
    """Step i against step i: how the scripted teacher's paths correspond (a perturbed path re-runs the same
    procedure, so its k-th step is the counterpart of the clean path's k-th step); extra steps come last."""
    shared = min(len(mine), len(other))
    moves = ["=" if mine[i] == other[i] else "~" for i in range(shared)]
    return moves + ["-"] * (len(mine) - shared) + ["+"] * (len(other) - shared)


def _blocks(moves: list[str], offset: int = 0) -> list[tuple[str, int, int, int, int]]:
    """difflib-style opcodes from a move list ("=" equal, "~" replace, "-" only mine, "+" only other)."""
    opcodes: list[tuple[str, int, int, int, int]] = []
    i = j = offset
    k = 0
    while k < len(moves):
        i0, j0, same = i, j, moves[k] == "="
        while k < len(moves) and (moves[k] == "=") == same:
            i += moves[k] in "=~-"
            j += moves[k] in "=~+"
            k += 1
        tag = "equal" if same else "replace" if i > i0 and j > j0 else "delete" if i > i0 else "insert"
        opcodes.append((tag, i0, i, j0, j))
    return opcodes


def _edit_moves(mine: list[str], other: list[str]) -> list[str]:
    """Align two step lists by edit distance; returns the moves (see `_blocks`).

    A replaced step costs 1 and an inserted or deleted one 1 as well, but on ties the alignment prefers a
    replacement. Used for CoTs of unknown origin, cut into sentences.
    """
    head = 0
    while head < min(len(mine), len(other)) and mine[head] == other[head]:
        head += 1
    tail = 0
    while tail < min(len(mine), len(other)) - head and mine[-1 - tail] == other[-1 - tail]:
        tail += 1
    a, b = mine[head:len(mine) - tail], other[head:len(other) - tail]
    # cost[i][j]: edit distance between a[i:] and b[j:]
    cost = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a), -1, -1):
        for j in range(len(b), -1, -1):
            if i == len(a) or j == len(b):
                cost[i][j] = (len(a) - i) + (len(b) - j)
            else:
                cost[i][j] = min(cost[i + 1][j + 1] + (a[i] != b[j]), cost[i + 1][j] + 1, cost[i][j + 1] + 1)
    moves = ["="] * head
    i = j = 0
    while i < len(a) or j < len(b):
        if i < len(a) and j < len(b) and cost[i][j] == cost[i + 1][j + 1] + (a[i] != b[j]):
            moves.append("=" if a[i] == b[j] else "~")
            i, j = i + 1, j + 1
        elif i < len(a) and (j == len(b) or cost[i][j] == cost[i + 1][j] + 1):
            moves.append("-")
            i += 1
        else:
            moves.append("+")
            j += 1
    return moves + ["="] * tail


def differing_spans(mine: Rendered, other_steps: Sequence[str], positional: bool = True) -> list[tuple[int, int]]:
    """Character spans of the steps of `mine` that are not shared with `other_steps` (a step-level diff).

    Steps are compared as whole strings, step k with step k for two paths of the scripted teacher
    (`positional`), or by an edit-distance alignment for sentences of a foreign CoT. Adjacent differing steps
    are merged into one span so that the separator between them counts too.
    """
    align = _positional_moves if positional else _edit_moves
    spans: list[tuple[int, int]] = []
    for tag, i1, i2, _j1, _j2 in _blocks(align(list(mine.steps), list(other_steps))):
        if tag == "replace":
            spans.append((mine.step_spans[i1][0], mine.step_spans[i2 - 1][1]))
        elif tag == "delete":
            # steps the other side lacks: take one separator with them, so the rest reads the same on both sides
            start, end = mine.step_spans[i1][0], mine.step_spans[i2 - 1][1]
            if i2 < len(mine.steps):
                end = mine.step_spans[i2][0]
            elif i1 > 0:
                start = mine.step_spans[i1 - 1][1]
            spans.append((start, end))
    return spans


def counterpart_spans(text: str, spans: Sequence[tuple[int, int]], other: str) -> list[tuple[int, int]]:
    """The key spans on the other side of a pair, given one side's spans.

    Outside its key spans a CoT is identical to its counterpart, so the shared pieces are found in order in
    `other` and what lies between them there is the counterpart's key steps. A pair's two rationales carry
    spans relative to their own parents; this gives the spans of either side relative to the other.
    """
    cuts = [0, *[p for span in spans for p in span], len(text)]
    shared = [text[cuts[i]:cuts[i + 1]] for i in range(0, len(cuts), 2)]
    if not other.startswith(shared[0]) or not other.endswith(shared[-1]):
        raise LabParseError("the two CoTs differ outside the given key spans")
    found: list[tuple[int, int]] = []
    cursor = len(shared[0])
    for piece in shared[1:-1]:
        at = other.find(piece, cursor)
        if at < 0:
            raise LabParseError("the two CoTs differ outside the given key spans")
        found.append((cursor, at))
        cursor = at + len(piece)
    end = len(other) - len(shared[-1])
    if spans:
        if end < cursor:
            raise LabParseError("the two CoTs differ outside the given key spans")
        found.append((cursor, end))
    return found


def first_differing_step(mine: Rendered, other_steps: Sequence[str]) -> tuple[int, int] | None:
    """The character span of the first step of `mine` that differs from the step in the same place of
    `other_steps` (two paths of the scripted teacher): where a wrong path leaves the right one. The steps after
    it may be sound reasoning from a wrong premise; this one is the mistake itself."""
    for i, step in enumerate(mine.steps):
        if i >= len(other_steps) or step != other_steps[i]:
            return mine.step_spans[i]
    return None


def split_sentences(text: str) -> Rendered:
    """A CoT cut into sentence-like steps with their spans, for aligning with a CoT whose steps are unknown."""
    steps: list[str] = []
    spans: list[tuple[int, int]] = []
    start = 0
    for i, ch in enumerate(text):
        at_end = i + 1 == len(text) or text[i + 1] == " "
        if ch in ".:?!" and at_end and not text[start:i].lstrip("-").isdigit():
            steps.append(text[start:i + 1])
            spans.append((start, i + 1))
            start = i + 2
    if start < len(text):
        steps.append(text[start:])
        spans.append((start, len(text)))
    return Rendered(text, spans, steps)


# ---- small shared helpers for question formats ---------------------------------------------------------------

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def options_block(choices: Sequence[str]) -> str:
    return "Options:\n" + "\n".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(choices))


def tokens_after(question: str, marker: str, family: str) -> tuple[str, ...]:
    """The space-separated tokens after `marker` ("Input:", "List:"), or a LabParseError naming the family."""
    text = question.strip()
    if marker not in text:
        raise LabParseError(f"not a {family} question: {text[:80]!r}")
    tokens = tuple(text.split(marker, 1)[1].split())
    if not tokens:
        raise LabParseError(f"{family} question with nothing after {marker!r}")
    return tokens


def split_options(question: str) -> tuple[str, list[str]]:
    """Separate a BBH multiple-choice question into its stem and its option texts (letter order)."""
    if "\nOptions:\n" not in question:
        return question, []
    stem, block = question.split("\nOptions:\n", 1)
    choices = []
    for line in block.splitlines():
        line = line.strip()
        if line.startswith("(") and ")" in line:
            choices.append(line.split(")", 1)[1].strip())
        elif line.startswith("- "):
            choices.append(line[2:].strip())
    return stem, choices


def letter_of(choices: Sequence[str], value: str, normalise=lambda s: s) -> str:
    """The "(X)" option whose text is `value` (after `normalise`)."""
    target = normalise(value)
    for i, c in enumerate(choices):
        if normalise(c) == target:
            return f"({LETTERS[i]})"
    raise LabParseError(f"no option matches {value!r} among {list(choices)}")


NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty"
).split()


def join_list(items: Sequence[str]) -> str:
    """English list: "a", "a and b", "a, b, and c" (BBH's serial comma)."""
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return f"{items[0]} and {items[1]}"
    return ", ".join(items[:-1]) + ", and " + items[-1]


def split_list(text: str) -> list[str]:
    """Inverse of join_list."""
    text = text.strip()
    if ", and " in text:
        head, last = text.rsplit(", and ", 1)
        return [p.strip() for p in head.split(", ")] + [last.strip()]
    if " and " in text:
        return [p.strip() for p in text.split(" and ", 1)]
    return [text]
