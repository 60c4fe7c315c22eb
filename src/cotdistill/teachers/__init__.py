"""Teachers: the protocol every method stage calls, and its backends."""

from .base import Completion, SamplingParams, Teacher, TextGenerator

__all__ = ["Completion", "SamplingParams", "Teacher", "TextGenerator"]
