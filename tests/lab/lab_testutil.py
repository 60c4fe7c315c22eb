"""Helpers for the lab tests: answers as the foundation's strict grader reads them."""

from __future__ import annotations

from cotdistill.grading import grade
from cotdistill.records import Example


def strictly_correct(text: str, example: Example) -> bool:
    """Whether the answer after the last "Therefore, the answer is" is the gold one (the strict rule)."""
    return grade(text, example).strict_correct
