"""The scripted teacher: step-by-step CoTs for lab and BBH questions, with typed mistakes at known steps.

It implements `cotdistill.teachers.base.Teacher`. Every decision is a pure function of (teacher seed, example,
sample index), so a rationale written by `solve` in one process is recognised by `rectify` in another: the
teacher re-derives the path, checks that the text matches, and rewrites only the steps from the mistake on.
The steps that differ from the paired path are recorded as `key_spans`, the ground truth for key-step alignment,
and the first of them, where the mistake was made, as `first_wrong_step`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import CotdistillError
from ..grading import extract_strict, final_answer_sentence, is_correct
from ..records import ErrorType, Example, Rationale
from .core import (
    MISTAKE_TYPES, Family, Fault, Rendered, Style, Worked, differing_spans, first_differing_step, render,
    split_sentences, stable_int,
)
from .families import family_of_task

if TYPE_CHECKING:
    from ..config import LabTeacher

SALTS_PER_SITE = 6  # perturbations tried at one step before moving on


@dataclass(frozen=True)
class Trace:
    """Everything the teacher decided for one (example, sample): the clean path and the one it writes."""

    family: Family
    problem: Any
    style: Style
    clean: Worked
    written: Worked
    error_type: ErrorType | None  # None: the written path is the clean one
    fault: Fault | None = None  # the mistake the written path carries


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).lower() == " ".join(b.split()).lower()


def _spans_against(ours: Rendered, ours_parent: Rendered, parent: Rationale) -> list[tuple[int, int]]:
    """Key spans of `ours` against its parent: step-exact when the parent is the text we would have written
    (`ours_parent`), else sentence by sentence against the parent's own text (a CoT from another teacher)."""
    if ours_parent.text == parent.text:
        return differing_spans(ours, ours_parent.steps)
    return differing_spans(split_sentences(ours.text), split_sentences(parent.text).steps, positional=False)


class ScriptedTeacher:
    """A teacher whose reasoning and mistakes are known exactly.

    mistake_rate: the share of `solve` samples that carry one typed mistake that changes the answer, whatever
    the question (the floor when `slip_rate` is set).
    slip_rate: question-dependent mistakes: the chance of a slip per unit of step load (`Family.step_loads`), so
    a question with load L carries a mistake with chance 1 - (1 - mistake_rate) * (1 - slip_rate) ** L, and the
    mistake lands on a step with odds proportional to its load. Hard questions and hard steps (more people,
    negations, products, crowded trades) then fill D- more than their share.
    spurious_rate: the share that reach the right answer through broken reasoning (error_type "spurious"); the
    same for every question (where a question's mistake chance and it sum past 1, spurious gets what is left).
    mistake_types: relative weights of "calculation", "logical", "knowledge"; a family draws among the types it
    supports (a family that supports none of the weighted types falls back to its own types, so the rate holds).
    """

    def __init__(self, mistake_rate: float = 0.0, spurious_rate: float = 0.0,
                 mistake_types: Mapping[str, float] | None = None, seed: int = 0, name: str = "scripted-lab",
                 slip_rate: float = 0.0):
        if not 0 <= mistake_rate <= 1 or not 0 <= spurious_rate <= 1 or mistake_rate + spurious_rate > 1:
            raise CotdistillError("mistake_rate and spurious_rate must lie in [0, 1] and sum to at most 1")
        if not 0 <= slip_rate < 1:
            raise CotdistillError(f"slip_rate must lie in [0, 1), got {slip_rate}")
        weights = dict(mistake_types or {t: 1.0 for t in MISTAKE_TYPES})
        unknown = set(weights) - set(MISTAKE_TYPES)
        if unknown or not any(w > 0 for w in weights.values()):
            raise CotdistillError(f"mistake_types must weight some of {MISTAKE_TYPES}, got {weights}")
        self.mistake_rate = mistake_rate
        self.spurious_rate = spurious_rate
        self.mistake_types = weights
        self.seed = seed
        self.name = name
        self.slip_rate = slip_rate

    @classmethod
    def from_config(cls, cfg: LabTeacher) -> ScriptedTeacher:
        """The teacher a study's `teacher` section describes."""
        return cls(cfg.mistake_rate, cfg.spurious_rate, cfg.mistake_types, cfg.seed, slip_rate=cfg.slip_rate)

    # ---- the Teacher protocol ------------------------------------------------------------------------------

    def solve(self, examples: Sequence[Example], n: int = 1) -> list[list[Rationale]]:
        """n rationales per example, already graded (strict extraction), since the teacher knows its answers."""
        return [[self._as_rationale(example, self.trace(example, i), i) for i in range(n)] for example in examples]

    def rectify(self, items: Sequence[tuple[Example, Rationale]], *, attempt: int = 0) -> list[Rationale]:
        """The correct path that follows each given rationale up to its mistake (the gold answer is the hint).

        The scripted teacher never fails, so every attempt gives the same answer.
        """
        out = []
        for example, wrong in items:
            trace = self.trace(example, wrong.sample_index)
            rendered = render(trace.clean, trace.style)
            spans = _spans_against(rendered, render(trace.written, trace.style), wrong)
            out.append(self._record(example, rendered, trace.clean.answer, wrong.sample_index,
                                    rid=f"{wrong.id}+rectified", origin="rectified", parent=wrong.id,
                                    error_type=None, spans=spans))
        return out

    def corrupt(self, items: Sequence[tuple[Example, Rationale]], error_type: ErrorType | None = None, *,
                attempt: int = 0, demonstrations: Sequence = ()) -> list[Rationale]:
        """For each correct rationale, the same path with one mistake and a wrong answer.

        It needs no demonstrations, so `attempt` and `demonstrations` change nothing. Where no single mistake
        changes the answer, the rationale comes back unchanged (still correct): a teach stage counts the item
        as failed, and the lab's pairing leaves it unpaired.

        The mistake is of `error_type` where the question allows it (a walk without turns cannot take a turn
        wrongly), else of another type of the family; the record's `error_type` says which.
        """
        out = []
        for example, right in items:
            trace = self.trace(example, right.sample_index)
            rng = random.Random(stable_int("corrupt", self.seed, right.id))
            types = self._type_order(trace.family, rng)
            if error_type:  # the chosen type first; another one only where this question cannot carry it
                types = [error_type] + [t for t in types if t != error_type]
            found = self._find_fault(trace, types, rng, change_answer=True, site_weights=None)
            if found is None:  # e.g. a real BBH walk that ends far from home: no one slip brings it back
                out.append(right.model_copy(update={"id": f"{right.id}+corrupted", "origin": "corrupted",
                                                    "parent": right.id, "key_spans": []}))
                continue
            fault, worked = found
            rendered = render(worked, trace.style)
            clean = render(trace.clean, trace.style)
            spans = _spans_against(rendered, clean, right)
            out.append(self._record(example, rendered, worked.answer, right.sample_index,
                                    rid=f"{right.id}+corrupted", origin="corrupted", parent=right.id,
                                    error_type=fault.error_type, spans=spans,
                                    first_wrong=first_differing_step(rendered, clean.steps)))
        return out

    # ---- planning --------------------------------------------------------------------------------------------

    def trace(self, example: Example, sample_index: int) -> Trace:
        """The path this teacher writes for (example, sample): clean, with a mistake, or spurious."""
        family = family_of_task(example.task)
        problem = family.parse(example)
        key = (self.seed, example.id, example.question, sample_index)
        style = Style(stable_int("style", *key))
        clean = family.work(problem, style)
        if not _same(clean.answer, example.answer):
            raise CotdistillError(
                f"lab solver disagrees with the gold answer of {example.id}: {clean.answer!r} vs {example.answer!r}")
        base = Trace(family, problem, style, clean, clean, None)
        rng = random.Random(stable_int("plan", *key))
        draw = rng.random()
        loads = family.step_loads(problem) if self.slip_rate else None
        mistake_chance = self.mistake_chance(family, problem, loads)
        if draw < mistake_chance:
            found = self._find_fault(base, self._type_order(family, rng), rng, True, loads)
            if found:
                return Trace(family, problem, style, clean, found[1], found[0].error_type, found[0])
        elif draw < mistake_chance + self.spurious_rate:
            found = self._find_fault(base, self._type_order(family, rng), rng, False, loads)
            if found:
                return Trace(family, problem, style, clean, found[1], "spurious", found[0])
            # no mistake that leaves the answer alone: write a wrong path and still state the right answer
            found = self._find_fault(base, self._type_order(family, rng), rng, True, loads)
            if found:
                return Trace(family, problem, style, clean, Worked(found[1].steps, clean.answer), "spurious",
                             found[0])
        return base

    def mistake_chance(self, family: Family, problem: Any, loads: Sequence[float] | None = None) -> float:
        """The chance that a `solve` sample of this question carries a mistake that changes its answer."""
        if not self.slip_rate:
            return self.mistake_rate
        load = sum(family.step_loads(problem) if loads is None else loads)
        return 1 - (1 - self.mistake_rate) * (1 - self.slip_rate) ** load

    def _type_order(self, family: Family, rng: random.Random) -> list[ErrorType]:
        """The mistake types to try for this family: one drawn by weight first, then the other weighted ones; a
        type weighted 0 never occurs, unless the family has none of the weighted types (then all of its own)."""
        weighted = [t for t in family.mistake_types if self.mistake_types.get(t, 0) > 0]
        pool = weighted or list(family.mistake_types)
        weights = [self.mistake_types.get(t, 0) or 1.0 for t in pool]
        first = rng.choices(pool, weights=weights)[0]
        return [first] + [t for t in pool if t != first]

    def _find_fault(self, trace: Trace, types: Sequence[ErrorType], rng: random.Random, change_answer: bool,
                    site_weights: Sequence[float] | None) -> tuple[Fault, Worked] | None:
        """A fault whose path differs from the clean one and whose answer changes (or, for spurious, does not).

        Sites are tried in a random order: uniform, or, with `site_weights` (step loads), each next site drawn
        with odds proportional to its weight (weight-0 sites come last)."""
        for error_type in types:
            candidates = [(site, salt) for site in trace.family.fault_steps(trace.problem, error_type)
                          for salt in range(SALTS_PER_SITE)]
            if site_weights is None:
                rng.shuffle(candidates)
            else:  # weighted sampling without replacement: sort by u ** (1 / w), largest first
                candidates.sort(key=lambda c: -_weighted_key(rng.random(), site_weights[c[0]]))
            for site, salt in candidates:
                fault = Fault(site, error_type, salt)
                worked = trace.family.work(trace.problem, trace.style, fault)
                if worked.steps != trace.clean.steps and _same(worked.answer, trace.clean.answer) != change_answer:
                    return fault, worked
        return None

    # ---- records --------------------------------------------------------------------------------------------

    def _as_rationale(self, example: Example, trace: Trace, sample_index: int) -> Rationale:
        rendered = render(trace.written, trace.style)
        spans, first_wrong = [], None
        if trace.error_type is not None:
            clean_steps = render(trace.clean, trace.style).steps
            spans, first_wrong = differing_spans(rendered, clean_steps), first_differing_step(rendered, clean_steps)
        return self._record(example, rendered, trace.written.answer, sample_index,
                            rid=f"{example.id}#{self.name}/{sample_index}", origin="teacher", parent=None,
                            error_type=trace.error_type, spans=spans, first_wrong=first_wrong)

    def _record(self, example: Example, rendered: Rendered, answer: str, sample_index: int, *, rid: str,
                origin: str, parent: str | None, error_type: ErrorType | None,
                spans: list[tuple[int, int]], first_wrong: tuple[int, int] | None = None) -> Rationale:
        assert rendered.text.endswith(final_answer_sentence(answer))
        extracted = extract_strict(rendered.text, example)  # graded by the same rule the evaluation uses
        return Rationale(
            id=rid, example_id=example.id, text=rendered.text, answer=extracted,
            correct=is_correct(extracted, example), origin=origin, parent=parent, error_type=error_type,
            model=self.name, sample_index=sample_index, key_spans=spans, first_wrong_step=first_wrong,
        )


def _weighted_key(u: float, weight: float) -> float:
    """Efraimidis-Spirakis key: sorting by u ** (1 / weight) draws items with odds proportional to weight."""
    return u ** (1 / weight) if weight > 0 else -1.0
