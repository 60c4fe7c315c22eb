"""Method recipes: each module compiles shared artifacts into weighted training sequences (see base.py)."""

from .base import REGISTRY, Method, MethodInputs, TrainingStage, register

# Importing a recipe module registers it; every recipe is listed here so REGISTRY is full after one import.
from . import edit, std_cot  # noqa: E402,F401  (after base: they register into it)

__all__ = ["REGISTRY", "Method", "MethodInputs", "TrainingStage", "register"]
