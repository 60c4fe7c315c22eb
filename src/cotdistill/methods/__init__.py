"""Method recipes: each module compiles shared artifacts into weighted training sequences (see base.py)."""

from .base import REGISTRY, Method, MethodInputs, Need, TrainingStage, recipe_params, register

# Importing a recipe module registers it; every recipe is listed here so REGISTRY is full after one import.
from . import answer_only, combined, coped, dpo, edit, morsd, mt_cot, scott, std_cot, step_by_step, zero_shot  # noqa: E402,F401
from .common import eval_prompt  # noqa: E402
from .teacher_row import teacher_accuracy  # noqa: E402

__all__ = ["REGISTRY", "Method", "MethodInputs", "Need", "TrainingStage", "eval_prompt", "recipe_params", "register",
           "teacher_accuracy"]
