"""Method recipes: each module compiles shared artifacts into weighted training sequences (see base.py)."""

from .base import REGISTRY, Method, MethodInputs, TrainingStage, register
from . import coped, morsd  # noqa: E402,F401  (importing a recipe registers it)

__all__ = ["REGISTRY", "Method", "MethodInputs", "TrainingStage", "register"]
