"""Seeded generation of lab questions as `Example` records, including BBH's programmatic subtasks, and a
study's lab data (`LabData`): difficulty mixes, a validation split and OOD levels."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence

from ..config import Knobs, LabData
from ..errors import CotdistillError
from ..records import Example
from .core import stable_int
from .families import get_family

# BBH subtasks that BIG-bench only defines by a task.py: the lab's generators stand in for them,
# with BBH's settings (five people, four operands per group of -9..9, a handful of operators).
PROGRAMMATIC_SUBTASKS: dict[str, tuple[str, dict[str, int]]] = {
    "boolean_expressions": ("boolean_expressions", {"operators": 4}),
    "multistep_arithmetic_two": ("multistep_arithmetic_two", {"operands": 4, "max_value": 9}),
    "web_of_lies": ("web_of_lies", {"people": 5}),
}


def generate_examples(family: str, n: int, seed: int, difficulty: dict[str, int] | None = None,
                      split: str = "train", exclude: Iterable[str] = (), id_prefix: str = "lab") -> list[Example]:
    """`n` distinct questions of one family at one difficulty; the same arguments give the same list.

    `exclude` holds question texts not to produce (a training set, when generating its held-out test set).
    """
    fam = get_family(family)
    knobs = fam.difficulty(**(difficulty or {}))
    subtask = fam.subtask_for(knobs)
    rng = random.Random(stable_int("lab", family, seed, sorted(knobs.items())))
    seen = set(exclude)
    examples: list[Example] = []
    attempts = 0
    while len(examples) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise CotdistillError(
                f"{family} at {knobs} has too few distinct questions for n={n} (got {len(examples)})")
        puzzle = fam.generate(rng, **knobs)
        if puzzle.question in seen:
            continue
        seen.add(puzzle.question)
        examples.append(Example(
            id=f"{id_prefix}/{subtask}/s{seed}/{len(examples)}",
            task=subtask,
            question=puzzle.question,
            answer=puzzle.answer,
            answer_format=puzzle.answer_format,
            choices=puzzle.choices,
            task_description=fam.task_description,
            split=split,
        ))
    return examples


def bbh_programmatic_examples(subtask: str, n: int, seed: int) -> list[Example]:
    """BBH's programmatic subtasks (boolean_expressions, multistep_arithmetic_two, web_of_lies) in BBH's format.

    The foundation's BBH loader calls this where BIG-bench has no task.json to read.
    """
    if subtask not in PROGRAMMATIC_SUBTASKS:
        raise CotdistillError(
            f"{subtask!r} is not a programmatic BBH subtask; expected one of {sorted(PROGRAMMATIC_SUBTASKS)}")
    family, knobs = PROGRAMMATIC_SUBTASKS[subtask]
    return generate_examples(family, n, seed, knobs, id_prefix="bbh-gen")


# ---- a study's lab data: difficulty mixes, validation, OOD levels -------------------------------------------

Level = tuple[dict[str, int], float]  # a difficulty setting (knobs) and its weight in a mix


def difficulty_mix(family: str, spec: Mapping[str, float] | Sequence[Mapping[str, float]] | None) -> list[Level]:
    """A family's IND setting as weighted levels: knobs (one level), a list of knobs each with an optional
    `weight` (default 1), or None (the family's default difficulty). Knob values must be whole numbers."""
    fam = get_family(family)
    if spec is None or isinstance(spec, Mapping):
        return [(fam.difficulty(**{k: int(v) for k, v in (spec or {}).items()}), 1.0)]
    if not spec:
        raise CotdistillError(f"lab.difficulty.{family}: an empty mix")
    levels: list[Level] = []
    for i, entry in enumerate(spec):
        knobs = {k: v for k, v in entry.items() if k != "weight"}
        weight = float(entry.get("weight", 1.0))
        bad = sorted(k for k, v in knobs.items() if float(v) != int(v))
        if weight <= 0 or bad:
            raise CotdistillError(f"lab.difficulty.{family}[{i}]: the weight must be positive (got {weight}) "
                                  f"and knobs whole numbers (not: {bad})")
        setting = fam.difficulty(**{k: int(v) for k, v in knobs.items()})
        if any(setting == other for other, _ in levels):
            raise CotdistillError(f"lab.difficulty.{family}[{i}]: {setting} is in the mix twice; add up its weights")
        levels.append((setting, weight))
    return levels


def share_out(n: int, weights: Sequence[float]) -> list[int]:
    """`n` split over the weights exactly (largest remainder; ties go to the earlier level)."""
    total = sum(weights)
    exact = [n * w / total for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    return counts


def generate_mix(family: str, n: int, seed: int, levels: Sequence[Level], split: str, seen: set[str],
                 id_prefix: str) -> list[Example]:
    """`n` questions shared out over weighted levels, none of them in `seen` (which grows with each one).

    With more than one level the id says which ("lab@people=4/web_of_lies/s0/7"), so ids stay unique."""
    out: list[Example] = []
    for (knobs, _), count in zip(levels, share_out(n, [w for _, w in levels])):
        if not count:
            continue
        tag = id_prefix if len(levels) == 1 else id_prefix + "@" + ",".join(f"{k}={v}" for k, v in knobs.items())
        made = generate_examples(family, count, seed, knobs, split=split, exclude=seen, id_prefix=tag)
        seen.update(e.question for e in made)
        out += made
    return out


def ood_levels(family: str, spec: Mapping[str, int] | Sequence[Mapping[str, int]] | None) -> list[tuple[str, Knobs]]:
    """(split name, knobs) of a family's OOD levels: its hard setting or the given knobs as split "ood", or a
    list of knobs as "ood-1", "ood-2", ... in order."""
    fam = get_family(family)
    if spec is None or isinstance(spec, Mapping):
        return [("ood", fam.difficulty(**(spec or fam.hard_difficulty)))]
    if not spec:
        raise CotdistillError(f"lab.ood_difficulty.{family}: an empty list of levels")
    return [(f"ood-{i}", fam.difficulty(**knobs)) for i, knobs in enumerate(spec, start=1)]


def lab_examples(data: LabData) -> list[Example]:
    """Every split of a study's lab data, family by family: train, IND test, OOD level(s), validation.

    They are generated in that order, each excluding every question made before it for the family, so all
    splits are disjoint; validation comes last so that adding it leaves the other splits as they were.
    """
    examples: list[Example] = []
    for family in data.families:
        mix = difficulty_mix(family, data.difficulty.get(family))
        seen: set[str] = set()
        examples += generate_mix(family, data.train_n, data.seed, mix, "train", seen, "lab")
        examples += generate_mix(family, data.test_n, data.seed + 1, mix, "test", seen, "lab")
        if data.ood:
            for split, knobs in ood_levels(family, data.ood_difficulty.get(family)):
                examples += generate_mix(family, data.ood_test_n or data.test_n, data.seed + 2, [(knobs, 1.0)],
                                         split, seen, "lab-" + split)
        examples += generate_mix(family, data.validation_n, data.seed + 3, mix, "validation", seen, "lab-val")
    return examples


def evaluation_splits(data: LabData) -> dict[str, str]:
    """Report label -> split of the lab's test sets: "IND" -> "test", then each OOD level ("OOD", or "OOD-1",
    "OOD-2", ...). The validation split is for choices, never reported."""
    splits = {"IND": "test"}
    if data.ood:
        for family in data.families:
            splits.update({name.upper(): name for name, _ in ood_levels(family, data.ood_difficulty.get(family))})
    return splits
