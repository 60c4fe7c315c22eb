"""Method recipes: each module compiles shared artifacts into weighted training sequences (see base.py)."""

from .base import REGISTRY, Method, MethodInputs, TrainingStage, register
from . import answer_only, dpo, mt_cot, scott, step_by_step  # noqa: F401  (each registers its recipe)
from .common import eval_prompt
from .teacher_row import teacher_accuracy

__all__ = ["REGISTRY", "Method", "MethodInputs", "TrainingStage", "eval_prompt", "register", "teacher_accuracy"]
