"""The reasoning lab: procedural BBH-format task families and a scripted teacher with known mistakes."""

from .core import Family, Fault, LabParseError
from .families import FAMILIES, family_of_task, get_family
from .generate import PROGRAMMATIC_SUBTASKS, bbh_programmatic_examples, generate_examples
from .teacher import ScriptedTeacher

__all__ = [
    "FAMILIES", "Family", "Fault", "LabParseError", "PROGRAMMATIC_SUBTASKS", "ScriptedTeacher",
    "bbh_programmatic_examples",
    "family_of_task", "generate_examples", "get_family",
]
