"""The two teacher interfaces.

`TextGenerator` is the raw model protocol (prompts in, n completions each out) that HTTP, local
transformers and vLLM backends implement and the cache wraps. `Teacher` is what method stages call: the three
reasoning operations on records. A language-model teacher implements `Teacher` by rendering prompt templates
and calling a `TextGenerator`; the lab's scripted teacher implements it natively, so it needs no prompt parsing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from ..records import Example, Rationale

Message = dict[str, str]  # {"role": ..., "content": ...}
Prompt = str | list[Message]  # a plain completion prompt or chat messages


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: Literal["stop", "length", "error"] = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    extra: dict = field(default_factory=dict, compare=False)


@runtime_checkable
class TextGenerator(Protocol):
    """A model that continues prompts. `model` names it in cache keys and records."""

    model: str

    def generate(self, prompts: Sequence[Prompt], n: int, params: SamplingParams) -> list[list[Completion]]:
        """Return n completions for each prompt, in prompt order."""
        ...


@dataclass(frozen=True)
class Demonstration:
    """An in-context example for corruption: a question with a right and a wrong rationale for it."""

    example: Example
    right: Rationale
    wrong: Rationale


@runtime_checkable
class Teacher(Protocol):
    """The teacher operations the methods need, on records."""

    name: str

    def solve(self, examples: Sequence[Example], n: int = 1) -> list[list[Rationale]]:
        """n step-by-step rationales per example, ungraded (origin "teacher")."""
        ...

    def rectify(self, items: Sequence[tuple[Example, Rationale]], *, attempt: int = 0) -> list[Rationale]:
        """For each wrong rationale, a correct one that follows its path, given the gold answer as a hint.

        `attempt` numbers the retries of a stage: a teacher that samples should answer differently per attempt.
        """
        ...

    def corrupt(self, items: Sequence[tuple[Example, Rationale]], *, attempt: int = 0,
                demonstrations: Sequence[Sequence[Demonstration]] = ()) -> list[Rationale]:
        """For each correct rationale, a similar one that reaches a different, wrong answer.

        `demonstrations[i]`, when given, holds in-context (question, right, wrong) triples for item i.
        """
        ...
