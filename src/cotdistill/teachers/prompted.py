"""A language-model teacher: renders the prompt templates, calls a `TextGenerator`, cleans the answers.

Messages go to the generator as chat messages, so the teacher's own chat template is applied by the server
(chat endpoint) or by its tokenizer (local and vLLM backends). For a completions endpoint,
`prompt_format="tokenizer"` renders them here with the teacher's tokenizer's chat template, and
`prompt_format="plain"` joins them into one text (base models without a template). Thinking (`<think>...</think>`) is stripped from every
answer, and anything written after the first "Therefore, the answer is X." line is dropped.

Retries differ: attempt k of rectify/corrupt uses its own seed and a temperature raised by
`retry_temperature_step * k` (as EDIT's repair scripts did), so a retry is a new sample, not a cache hit.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Literal

from ..errors import CotdistillError
from ..grading import ANSWER_PHRASE, strip_thinking
from ..records import Example, Rationale
from .base import Completion, Demonstration, Prompt, SamplingParams, TextGenerator
from .prompts import (
    Exemplar, PromptSet, as_plain_prompt, example_values, format_demonstrations, format_exemplars,
    pick_exemplars,
)

_LEADING_LABEL = re.compile(r"^\s*(?:flawed solution|correct solution|solution|answer|a)\s*:\s*", re.IGNORECASE)
_ANSWER_LINE = re.compile(re.escape(ANSWER_PHRASE) + r"[^\n]*", re.IGNORECASE)
ATTEMPT_SEED_STRIDE = 100_003  # attempts draw seeds far apart from one another's samples


def clean_rationale(text: str) -> str:
    """The visible rationale: thinking removed, a leading label dropped, cut after the first answer line."""
    text = _LEADING_LABEL.sub("", strip_thinking(text))
    found = _ANSWER_LINE.search(text)
    if found:
        line = found.group(0)
        end = line.find(". ")  # "Therefore, the answer is (B). Next question..." keeps only the sentence
        text = text[: found.start()] + (line[: end + 1] if end >= 0 else line)
    return text.strip()


class PromptedTeacher:
    """`Teacher` on top of any `TextGenerator` (HTTP, local transformers, vLLM), with prompt templates."""

    def __init__(self, generator: TextGenerator, *, params: SamplingParams | None = None,
                 prompts: PromptSet | None = None, exemplars: Sequence[Exemplar] = (), shots: int = 3,
                 rectify_template: Literal["hint", "revise"] = "hint", retry_temperature_step: float = 0.3,
                 prompt_format: Literal["chat", "plain", "tokenizer"] = "chat", tokenizer=None,
                 name: str | None = None):
        if prompt_format == "tokenizer" and tokenizer is None:
            raise CotdistillError("prompt_format 'tokenizer' needs the teacher's tokenizer")
        self.generator = generator
        self.params = params or SamplingParams(temperature=0.7, max_tokens=512)
        self.prompts = prompts or PromptSet()
        self.exemplars = list(exemplars)
        self.shots = shots
        self.rectify_template = rectify_template
        self.retry_temperature_step = retry_temperature_step
        self.prompt_format = prompt_format
        self.tokenizer = tokenizer
        self.name = name or generator.model

    def identity(self, tasks: Sequence[str] = ()) -> dict:
        """What the teacher's outputs depend on (no endpoint, no key), for stage hashes."""
        exemplars = hashlib.sha256("\n".join(e.model_dump_json() for e in self.exemplars).encode()).hexdigest()
        model = getattr(self.generator, "cache_name", self.generator.model)
        return {"name": self.name, "model": model, "params": asdict(self.params),
                "templates": self.prompts.fingerprint(tasks), "exemplars": exemplars[:16], "shots": self.shots,
                "rectify_template": self.rectify_template, "retry_step": self.retry_temperature_step,
                "prompt_format": self.prompt_format,
                "chat_template": getattr(self.tokenizer, "chat_template", None)}

    # ---- the Teacher protocol --------------------------------------------------------------------------------

    def solve(self, examples: Sequence[Example], n: int = 1) -> list[list[Rationale]]:
        prompts = [self._cot_prompt(e) for e in examples]
        outs = self.generator.generate(prompts, n, self.params)
        return [
            [self._record(e, c, rid=f"{e.id}#{self.name}/{i}", origin="teacher", parent=None, sample_index=i)
             for i, c in enumerate(cs)]
            for e, cs in zip(examples, outs)
        ]

    def rectify(self, items: Sequence[tuple[Example, Rationale]], *, attempt: int = 0) -> list[Rationale]:
        prompts = [
            self._render(self.rectify_template, e, answer=e.answer.strip(), rationale=wrong.text.strip())
            for e, wrong in items
        ]
        return self._rewrite(items, prompts, attempt, "rectified")

    def corrupt(self, items: Sequence[tuple[Example, Rationale]], *, attempt: int = 0,
                demonstrations: Sequence[Sequence[Demonstration]] = ()) -> list[Rationale]:
        prompts = [
            self._render("corrupt", e, rationale=right.text.strip(),
                         demonstrations=format_demonstrations(demonstrations[k]) if demonstrations else "")
            for k, (e, right) in enumerate(items)
        ]
        return self._rewrite(items, prompts, attempt, "corrupted")

    def revise(self, items: Sequence[tuple[Example, Rationale]], *, attempt: int = 0) -> list[Rationale]:
        """CoPeD's revision: a wrong (often student) rationale rewritten to reach the gold answer."""
        prompts = [self._render("revise", e, answer=e.answer.strip(), rationale=r.text.strip()) for e, r in items]
        return self._rewrite(items, prompts, attempt, "rectified", suffix="revised")

    # ---- helpers ----------------------------------------------------------------------------------------------

    def _cot_prompt(self, example: Example) -> Prompt:
        shots = pick_exemplars(self.exemplars, example.task, self.shots) if self.shots else []
        if shots:
            return self._render("cot_fewshot", example, exemplars=format_exemplars(shots))
        return self._render("cot", example)

    def _render(self, template: str, example: Example, **values: str) -> Prompt:
        messages = self.prompts.get(template, example.task).render(**example_values(example), **values)
        if self.prompt_format == "plain":
            return as_plain_prompt(messages)
        if self.prompt_format == "tokenizer":
            from .local import render_for_tokenizer

            return render_for_tokenizer(messages, self.tokenizer)
        return messages

    def attempt_params(self, attempt: int) -> SamplingParams:
        if attempt == 0:
            return self.params
        return replace(self.params,
                       temperature=min(1.0, self.params.temperature + self.retry_temperature_step * attempt),
                       seed=(self.params.seed or 0) + ATTEMPT_SEED_STRIDE * attempt)

    def _rewrite(self, items: Sequence[tuple[Example, Rationale]], prompts: list[Prompt], attempt: int,
                 origin: Literal["rectified", "corrupted"], suffix: str | None = None) -> list[Rationale]:
        # each item keeps its parent's sample index, so two samples of one question get distinct rewrites
        outs = self._ask(prompts, [parent.sample_index for _, parent in items], self.attempt_params(attempt))
        return [
            self._record(e, c, rid=f"{parent.id}+{suffix or origin}", origin=origin, parent=parent.id,
                         sample_index=parent.sample_index)
            for (e, parent), c in zip(items, outs)
        ]

    def _ask(self, prompts: list[Prompt], samples: list[int], params: SamplingParams) -> list[Completion]:
        if hasattr(self.generator, "generate_samples"):
            return self.generator.generate_samples(prompts, samples, params)
        # a plain TextGenerator: one call per sample index, with the seed shifted by it
        out: list[Completion | None] = [None] * len(prompts)
        for index in sorted(set(samples)):
            rows = [k for k, s in enumerate(samples) if s == index]
            shifted = replace(params, seed=(params.seed or 0) + index)
            for k, cs in zip(rows, self.generator.generate([prompts[k] for k in rows], 1, shifted)):
                out[k] = cs[0]
        return out  # type: ignore[return-value]

    def _record(self, example: Example, completion: Completion, *, rid: str, origin: str, parent: str | None,
                sample_index: int) -> Rationale:
        return Rationale(id=rid, example_id=example.id, text=clean_rationale(completion.text), origin=origin,
                         parent=parent, model=self.name, sample_index=sample_index,
                         truncated=completion.finish_reason == "length")
