"""Helpers for the teacher tests: small multiple-choice questions and a teacher wired to a loopback server."""

from __future__ import annotations

from pathlib import Path

from cotdistill.data.common import lettered
from cotdistill.records import Example
from cotdistill.teachers.base import SamplingParams
from cotdistill.teachers.cache import TeacherCache
from cotdistill.teachers.generator import CachedGenerator
from cotdistill.teachers.http import OpenAIBackend
from cotdistill.teachers.prompted import PromptedTeacher


def choice_examples(n: int, tasks: tuple[str, ...] = ("toy_a", "toy_b")) -> list[Example]:
    """n four-option questions whose gold answer is (C)."""
    return [
        Example(id=f"q{i}", task=tasks[i % len(tasks)], answer="(C)", answer_format="choice",
                question=lettered(f"Which shelf holds box {i}?", ["top", "left", "middle", "bottom"]),
                choices=["top", "left", "middle", "bottom"], task_description="Find the box.", split="train")
        for i in range(n)
    ]


def http_teacher(base_url: str, cache_path: Path | None, *, concurrency: int = 8, timeout: float = 2.0,
                 max_retries: int = 10, api_key=None, max_tokens: int = 64) -> PromptedTeacher:
    backend = OpenAIBackend(base_url, "toy-teacher", api_key=api_key, concurrency=concurrency, timeout=timeout,
                            max_retries=max_retries, backoff=0.02, backoff_max=0.2, seed=0)
    cache = TeacherCache(cache_path) if cache_path is not None else None
    return PromptedTeacher(CachedGenerator(backend, cache), params=SamplingParams(temperature=0.7, max_tokens=max_tokens))
