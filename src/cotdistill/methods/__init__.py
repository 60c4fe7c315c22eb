"""Method recipes: each module compiles shared artifacts into weighted training sequences (see base.py)."""

from .base import REGISTRY, Method, MethodInputs, TrainingStage, register

__all__ = ["REGISTRY", "Method", "MethodInputs", "TrainingStage", "register"]
