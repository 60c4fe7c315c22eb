"""The student before any training: its zero-shot row, evaluated with the prompt every other method uses.

It compiles no training stage (`trains=False`), so the study evaluates the seed's initial student as it is. A
pretrained student starts from the same weights whatever the seed, and greedy decoding is deterministic, so the
study runs it once, as a seedless row (like the teacher's); a student built from scratch differs per seed and
gets one run per seed.
"""

from __future__ import annotations

from typing import Any

from ..errors import CotdistillError
from .base import Method, MethodInputs, TrainingStage, register

NAME = "zero_shot"


def build(inputs: MethodInputs, params: dict[str, Any]) -> list[TrainingStage]:
    if params:
        raise CotdistillError(f"method {NAME!r} takes no parameters, got {sorted(params)}")
    return []


register(Method(NAME, build, needs=(), trains=False, summary="no training: the initial student, as a baseline row"))
