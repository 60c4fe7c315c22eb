"""The lab's task families, one module each, registered by name."""

from __future__ import annotations

from ...errors import CotdistillError
from ..core import MISTAKE_TYPES, Family
from .boolean_expressions import BooleanExpressions
from .dyck_languages import DyckLanguages
from .multistep_arithmetic import MultistepArithmetic
from .navigate import Navigate
from .object_counting import ObjectCounting
from .tracking_shuffled_objects import TrackingShuffledObjects
from .web_of_lies import WebOfLies
from .word_sorting import WordSorting

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        BooleanExpressions(), DyckLanguages(), MultistepArithmetic(), Navigate(), ObjectCounting(),
        TrackingShuffledObjects(), WebOfLies(), WordSorting(),
    )
}


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise CotdistillError(f"unknown lab family {name!r}; known: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]


def family_of_task(task: str) -> Family:
    """The family that solves an example of `task`: a family name or one of its BBH subtask names.

    A source prefix such as "bbh/" or "lab:" is ignored, so records from any loader resolve.
    """
    bare = task.replace(":", "/").rsplit("/", 1)[-1]
    for family in FAMILIES.values():
        if bare == family.name or bare in family.bbh_subtasks or bare.startswith(family.name + "_"):
            return family
    raise CotdistillError(f"no lab family solves task {task!r}; known: {', '.join(sorted(FAMILIES))}")


def mistake_type_table() -> str:
    """A markdown table of every family's mistake types, what each one does, and its IND and OOD settings
    (docs/lab.md holds a copy that a test keeps equal to this)."""

    def knobs(d: dict[str, int]) -> str:
        return ", ".join(f"{k}={v}" for k, v in d.items())

    lines = ["| family | " + " | ".join(MISTAKE_TYPES) + " | IND default | OOD default |",
             "|---" * (len(MISTAKE_TYPES) + 3) + "|"]
    for name, family in sorted(FAMILIES.items()):
        cells = [family.mistake_types.get(t, "–") for t in MISTAKE_TYPES]
        lines.append(f"| {name} | " + " | ".join(cells)
                     + f" | {knobs(family.default_difficulty)} | {knobs(family.hard_difficulty)} |")
    return "\n".join(lines) + "\n"
