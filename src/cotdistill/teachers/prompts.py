"""Prompt templates for the teacher, overridable per task, and the few-shot exemplar file.

A template file has a `[system]` and a `[user]` section; `${name}` placeholders are filled with
`string.Template`, so braces and dollar signs inside questions (Dyck words, prices) are left alone. The
defaults live in `cotdistill/teachers/templates/`; a user's folder overrides them by name (`hint.txt`), or for
one task only (`<task>/hint.txt`).

Templates: `cot` (zero-shot CoT extraction), `cot_fewshot` (with `${exemplars}`), `hint` (EDIT's answer-hint
rectification, `${answer}`), `corrupt` (EDIT's contrastive corruption, `${rationale}` and
`${demonstrations}`), `revise` (CoPeD's revision of a wrong rationale, `${rationale}` and `${answer}`).
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import Field

from ..errors import CotdistillError
from ..records import Example, Record, iter_jsonl, parse_record
from .base import Demonstration, Message

TEMPLATE_NAMES = ("cot", "cot_fewshot", "hint", "corrupt", "revise")
_SECTION = re.compile(r"^\[(system|user)\]\s*$", re.MULTILINE)
_BLANK_RUN = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    system: str
    user: str
    source: str  # the file it came from, for error messages

    def render(self, **values: str) -> list[Message]:
        """Chat messages with the placeholders filled; an unknown placeholder is an error naming the file."""
        messages = []
        for role, text in (("system", self.system), ("user", self.user)):
            if not text:
                continue
            try:
                filled = string.Template(text).substitute(values)
            except KeyError as e:
                raise CotdistillError(
                    f"{self.source}: unknown placeholder ${{{e.args[0]}}} (known: {', '.join(sorted(values))})"
                ) from None
            except ValueError as e:
                raise CotdistillError(f"{self.source}: bad placeholder syntax: {e} (write $$ for a dollar sign)") from None
            messages.append({"role": role, "content": _BLANK_RUN.sub("\n\n", filled).strip()})
        return messages


def parse_template(text: str, name: str, source: str) -> PromptTemplate:
    """Read the `[system]` / `[user]` sections of a template file (text before any section is the user part)."""
    parts = _SECTION.split(text)
    sections = {"system": "", "user": parts[0].strip()}
    for role, body in zip(parts[1::2], parts[2::2]):
        sections[role] = body.strip()
    if not sections["user"]:
        raise CotdistillError(f"{source}: the template has no [user] text")
    return PromptTemplate(name, sections["system"], sections["user"], source)


class PromptSet:
    """The templates in use: a user folder's files first (per task, then global), then the defaults."""

    def __init__(self, override_dir: str | Path | None = None):
        self.override_dir = Path(override_dir).expanduser() if override_dir else None
        if self.override_dir is not None and not self.override_dir.is_dir():
            raise CotdistillError(f"prompt folder '{self.override_dir}' does not exist")

    def _file(self, name: str, task: str | None) -> tuple[str, str]:
        if name not in TEMPLATE_NAMES:
            raise CotdistillError(f"unknown prompt template '{name}' (known: {', '.join(TEMPLATE_NAMES)})")
        if self.override_dir is not None:
            for candidate in ([self.override_dir / task / f"{name}.txt"] if task else []) + [
                self.override_dir / f"{name}.txt"
            ]:
                if candidate.is_file():
                    return candidate.read_text(encoding="utf-8"), str(candidate)
        default = resources.files("cotdistill.teachers") / "templates" / f"{name}.txt"
        return default.read_text(encoding="utf-8"), f"<default {name}.txt>"

    def get(self, name: str, task: str | None = None) -> PromptTemplate:
        text, source = self._file(name, task)
        return parse_template(text, name, source)

    def fingerprint(self, tasks: Sequence[str] = ()) -> str:
        """A hash of every template text that can be used for these tasks (a stage reruns when one changes)."""
        h = hashlib.sha256()
        for name in TEMPLATE_NAMES:
            for task in [None, *sorted(set(tasks))]:
                h.update(self._file(name, task)[0].encode())
        return h.hexdigest()[:16]


class Exemplar(Record):
    """A worked example for few-shot CoT extraction; `task` empty means it serves every task."""

    question: str = Field(min_length=1)
    rationale: str = Field(min_length=1)
    task: str = ""


def load_exemplars(path: str | Path) -> list[Exemplar]:
    """Read a JSONL exemplar file: {"question", "rationale", "task"?}; rationales must state their answer."""
    out = []
    for line, value in iter_jsonl(path):
        exemplar = parse_record(Exemplar, value, str(path), line)
        if "the answer is" not in exemplar.rationale.lower():
            raise CotdistillError(
                f"{path}:{line}: field 'rationale': must end with \"Therefore, the answer is X.\"")
        out.append(exemplar)
    if not out:
        raise CotdistillError(f"{path}: no exemplars")
    return out


def pick_exemplars(exemplars: Sequence[Exemplar], task: str, shots: int) -> list[Exemplar]:
    """Up to `shots` exemplars: those of this task first, then general ones (task left empty)."""
    own = [e for e in exemplars if e.task == task]
    general = [e for e in exemplars if not e.task]
    return (own + general)[:shots]


def format_exemplars(exemplars: Sequence[Exemplar]) -> str:
    return "\n\n".join(f"Question: {e.question.strip()}\nSolution: {e.rationale.strip()}" for e in exemplars)


def format_demonstrations(demos: Sequence[Demonstration]) -> str:
    return "\n\n".join(
        f"Question: {d.example.question.strip()}\nCorrect solution: {d.right.text.strip()}\n"
        f"Flawed solution: {d.wrong.text.strip()}"
        for d in demos
    )


def example_values(example: Example) -> dict[str, str]:
    """The placeholders every template can use."""
    return {"task_description": example.task_description.strip(), "question": example.question.strip(),
            "task": example.task}


def as_plain_prompt(messages: Sequence[Message]) -> str:
    """Chat messages as one plain prompt, for a completions endpoint without a chat template."""
    return "\n\n".join(m["content"] for m in messages) + "\n\n"
