"""Answer-only fine-tuning: the student learns to state the gold answer with no reasoning.

Sequence: student_prompt(example) -> "Therefore, the answer is X." + EOS, one per training example, all tokens
weight 1 and in the answer segment. The target is the answer *sentence* rather than the bare answer so that
the strict grader (which reads the answer after "the answer is") scores this student like every other one, and
the evaluation prompt is the ordinary student prompt. Uses gold answers only, no rationales.
"""

from __future__ import annotations

from typing import Any

from ..grading import final_answer_sentence
from .base import Method, MethodInputs, TrainingStage, register
from .common import Piece, check_params, compile_pieces, encode_piece, tagged_prompt

NAME = "answer_only"
DEFAULTS: dict[str, Any] = {"prompt_style": "plain"}


def build(inputs: MethodInputs, params: dict[str, Any]) -> list[TrainingStage]:
    p = check_params(NAME, params, DEFAULTS)
    pieces: list[Piece] = [
        encode_piece(inputs, id=f"{NAME}/{ex.id}", example_id=ex.id, task="answer",
                     prompt=tagged_prompt(ex, style=p["prompt_style"], tokenizer=inputs.tokenizer, method=NAME),
                     target=final_answer_sentence(ex.answer), answer_from=0)
        for ex in inputs.examples
    ]
    return [TrainingStage(name=NAME, sequences=compile_pieces(pieces, {"answer": 1.0}, NAME))]


register(Method(NAME, build, needs=(), summary="fine-tune on the gold answer sentence alone, no rationale"))
