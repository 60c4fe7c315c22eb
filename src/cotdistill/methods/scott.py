"""SCOTT (Wang et al. 2023), student side: learn to answer *from* the rationale, including a wrong one.

Sequences (prompt = the uniform student prompt):
  * factual, once per graded-correct teacher CoT: "[Factual] " + prompt -> the whole CoT. The target's
    reasoning is the rationale-generation task, and its closing "Therefore, the answer is X." is the answer
    predicted from the question plus that correct rationale, in the same sequence.
  * counterfactual, once per distinct wrong rationale: "[Counterfactual] " + prompt + " " + the wrong reasoning
    (its answer sentence removed) + " Therefore, the answer is" -> "X'." where X' is the answer that rationale
    implies (its extracted answer, which differs from the gold one). Only the answer is a target: this is the
    term that teaches the student to follow its rationale rather than a memorised question->answer shortcut.
Wrong rationales come from the rejected CoTs of EDIT's dual pairs and from teacher CoTs graded wrong
(`counterfactual_from`); ones with no extractable answer, or whose answer equals the gold, are skipped.
Loss = alpha * L_counterfactual + (1 - alpha) * L_factual, each a token mean over its task (common.py);
alpha = 0.5 is our default. At test time: "[Factual] " + prompt, and the student writes CoT then answer.

Not reproduced: SCOTT's teacher-side contrastive decoding (generating rationales conditioned on the gold
answer, and counterfactual rationales conditioned on a perturbed answer, by contrasting teacher logits with
and without the answer). It needs token-level control over the teacher's decoding, which API teachers do not
give; our counterfactual rationales are EDIT's corruptions and the teacher's own wrong CoTs instead.
The tag wording follows EDIT's implementation of this baseline.
"""

from __future__ import annotations

from typing import Any

from ..grading import ANSWER_PHRASE, is_correct
from ..records import Example, Rationale
from .base import Method, MethodInputs, TrainingStage, register
from .common import (EVAL_PROMPTS, Piece, answer_start, answer_tail, check_fraction, check_params, compile_pieces,
                     correct_rationales, encode_piece, examples_by_id, split_answer_sentence, tagged_prompt)

NAME = "scott"
FACTUAL_TAG = "[Factual] "
COUNTERFACTUAL_TAG = "[Counterfactual] "
SOURCES = ("pairs", "wrong_rationales")
DEFAULTS: dict[str, Any] = {
    "alpha": 0.5, "origins": ("teacher",), "counterfactual_from": SOURCES,
    "counterfactual_origins": ("teacher", "corrupted"), "prompt_style": "plain",
}


def prompt_for_eval(example: Example, style: str = "plain", tokenizer: Any = None,
                    params: dict[str, Any] | None = None) -> str:
    """The factual prompt the student is evaluated with: it generates the CoT and the answer."""
    return tagged_prompt(example, prefix=FACTUAL_TAG, style=style, tokenizer=tokenizer, method=NAME)


def wrong_rationales(inputs: MethodInputs, sources: tuple[str, ...], origins: tuple[str, ...]) -> list[tuple[Example, Rationale]]:
    """Distinct wrong rationales with a usable implied answer, pairs' rejected CoTs first, in input order."""
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise ValueError(f"method {NAME!r}: unknown counterfactual_from {unknown}; known: {list(SOURCES)}")
    by_id = examples_by_id(inputs)
    candidates: list[Rationale] = []
    if "pairs" in sources:
        candidates += [pair.rejected for pair in inputs.pairs]
    if "wrong_rationales" in sources:
        candidates += [r for r in inputs.rationales if r.correct is False and r.origin in origins]
    seen: set[tuple[str, str]] = set()
    chosen = []
    for r in candidates:
        ex = by_id.get(r.example_id)
        key = (r.example_id, r.text.strip())
        if ex is None or key in seen or r.answer is None or is_correct(r.answer, ex):
            continue
        if not split_answer_sentence(r.text)[0]:
            continue  # nothing to reason from
        seen.add(key)
        chosen.append((ex, r))
    return chosen


def build(inputs: MethodInputs, params: dict[str, Any]) -> list[TrainingStage]:
    p = check_params(NAME, params, DEFAULTS)
    alpha = check_fraction(NAME, "alpha", p["alpha"])
    style, tok = p["prompt_style"], inputs.tokenizer
    pieces: list[Piece] = []
    for ex, r in correct_rationales(inputs, p["origins"]):
        cot = r.text.strip()
        pieces.append(encode_piece(inputs, id=f"{NAME}/{r.id}/factual", example_id=ex.id, task="factual",
                                   prompt=prompt_for_eval(ex, style, tok), target=cot, answer_from=answer_start(cot)))
    for ex, r in wrong_rationales(inputs, p["counterfactual_from"], p["counterfactual_origins"]):
        reasoning = split_answer_sentence(r.text)[0]
        prompt = tagged_prompt(ex, prefix=COUNTERFACTUAL_TAG, suffix=f" {reasoning} {ANSWER_PHRASE}", style=style,
                               tokenizer=tok, method=NAME)
        pieces.append(encode_piece(inputs, id=f"{NAME}/{r.id}/counterfactual", example_id=ex.id,
                                   task="counterfactual", prompt=prompt, target=answer_tail(r.answer or ""),
                                   answer_from=0))
    sequences = compile_pieces(pieces, {"counterfactual": alpha, "factual": 1.0 - alpha}, NAME)
    return [TrainingStage(name=NAME, sequences=sequences, extra={"eval_prompt": {"prefix": FACTUAL_TAG, "suffix": ""}})]


EVAL_PROMPTS[NAME] = prompt_for_eval
register(Method(NAME, build, needs=("rationales", "pairs"),
                summary="SCOTT student: factual CoT, counterfactual rationale -> its implied answer"))
