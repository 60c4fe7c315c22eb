"""Seeded generation of lab questions as `Example` records, including BBH's programmatic subtasks."""

from __future__ import annotations

import random
from collections.abc import Iterable

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
