"""Std-CoT: supervised fine-tuning on the teacher's correct CoTs (question -> CoT), with EDIT's volume controls.

volume "none": every correct teacher rationale once (several per question when the teacher was sampled more).
volume "repeat": correct rationales drawn round-robin over each question's samples, repeating once the distinct
  ones run out, to exactly `target_size` sequences (default: twice the number of dual pairs, the sequence count
  of EDIT's stage 2 and of its Table 5 controls).
volume "dual": SFT on both CoTs of every dual pair; the wrong one's prompt starts with `counterfactual_marker`,
  so the plain prompt (the one evaluated) only ever leads to correct reasoning (`counterfactual_in: target`
  puts the marker at the start of the wrong CoT instead; EDIT says only that negatives are "prefixed").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import Field

from ..errors import CotdistillError
from ..prompting import PromptStyle, student_prompt
from ..records import Example, Rationale, WeightedSequence
from .base import Method, MethodInputs, TrainingStage, register
from .encode import encode, weighted_sequence
from .params import Params, StageParams, parse_params

NAME = "std_cot"


class StdCotParams(Params):
    volume: Literal["none", "repeat", "dual"] = "none"
    target_size: int | None = Field(default=None, ge=1)
    counterfactual_marker: str = "[Counterfactual Reasoning]"
    counterfactual_in: Literal["prompt", "target"] = "prompt"  # where the marker goes (the paper does not say)
    stage: StageParams = Field(default_factory=StageParams)


def examples_by_id(inputs: MethodInputs) -> dict[str, Example]:
    return {e.id: e for e in inputs.examples}


def example_of(examples: dict[str, Example], rationale: Rationale, where: str) -> Example:
    try:
        return examples[rationale.example_id]
    except KeyError:
        raise CotdistillError(f"{where} {rationale.id!r} refers to example {rationale.example_id!r}, "
                              "which is not among the training examples") from None


def require_tokenizer(inputs: MethodInputs, method: str) -> Any:
    if inputs.tokenizer is None:
        raise CotdistillError(f"method {method!r} compiles token ids and needs the student's tokenizer")
    return inputs.tokenizer


def sft_sequences(inputs: MethodInputs, rationales: Iterable[Rationale], method: str,
                  prompt_prefix: str = "", target_prefix: str = "", suffix: str = "",
                  style: PromptStyle = "plain") -> list[WeightedSequence]:
    """One fully weighted sequence (student prompt -> rationale text) per rationale, in order.

    `suffix` keeps ids unique when a rationale appears more than once (repeat sampling).
    """
    tokenizer = require_tokenizer(inputs, method)
    examples = examples_by_id(inputs)
    out = []
    for n, r in enumerate(rationales):
        example = example_of(examples, r, "rationale")
        plain = student_prompt(example, style, inputs.tokenizer)
        prompt = f"{prompt_prefix} {plain}" if prompt_prefix else plain
        text = r.text.strip()  # the target is " " + text + EOS, as every recipe writes it (encode.py)
        target = f"{target_prefix} {text}" if target_prefix else text
        encoded = encode(tokenizer, prompt, target, encoder_decoder=inputs.encoder_decoder)
        out.append(weighted_sequence(encoded, id=f"{r.id}{suffix.format(n=n)}",
                                     method=method, example_id=example.id))
    return out


def correct_teacher_rationales(rationales: Sequence[Rationale]) -> list[Rationale]:
    """D+: teacher CoTs graded correct; ungraded or wrong ones never reach SFT."""
    return [r for r in rationales if r.origin == "teacher" and r.correct is True]


def repeat_to_size(rationales: Sequence[Rationale], size: int) -> list[Rationale]:
    """`size` rationales: round r takes each question's r-th sample; all distinct ones come before any repeat."""
    per_question: dict[str, list[Rationale]] = {}
    for r in rationales:
        per_question.setdefault(r.example_id, []).append(r)
    ordered = [samples[i] for i in range(max(map(len, per_question.values()), default=0))
               for samples in per_question.values() if i < len(samples)]
    if not ordered:
        raise CotdistillError("repeat sampling needs at least one correct teacher rationale")
    return [ordered[i % len(ordered)] for i in range(size)]


def build(inputs: MethodInputs, params: dict[str, Any]) -> list[TrainingStage]:
    p = parse_params(StdCotParams, NAME, params)
    correct = correct_teacher_rationales(inputs.rationales)
    if p.volume == "dual":
        if not inputs.pairs:
            raise CotdistillError(f"method {NAME!r} with volume 'dual' needs dual pairs")
        sequences = []
        for pair in inputs.pairs:
            sequences += sft_sequences(inputs, [pair.chosen], NAME)
            where = {"prompt_prefix" if p.counterfactual_in == "prompt" else "target_prefix": p.counterfactual_marker}
            sequences += sft_sequences(inputs, [pair.rejected], NAME, **where)
    elif p.volume == "repeat":
        size = p.target_size or 2 * len(inputs.pairs)
        if size < 1:
            raise CotdistillError(f"method {NAME!r} with volume 'repeat' needs target_size or dual pairs to match")
        sequences = sft_sequences(inputs, repeat_to_size(correct, size), NAME, suffix="@{n}")
    else:
        sequences = sft_sequences(inputs, correct, NAME)
    if not sequences:
        raise CotdistillError(f"method {NAME!r}: no correct teacher rationale to train on")
    return [TrainingStage(name="sft", sequences=sequences, learning_rate=p.stage.learning_rate,
                          epochs=p.stage.epochs, extra={**p.stage.trainer_extra(), "stats": {"volume": p.volume}})]


# volume "dual" and the default size of "repeat" also read `pairs`; plain Std-CoT needs only rationales.
register(Method(NAME, build, needs=("rationales",),
                summary="SFT on correct teacher CoTs (repeat-sampled or on dual CoTs to match EDIT's volume)"))
