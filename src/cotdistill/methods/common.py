"""Pieces the baseline recipes share: parameter checks, task-tagged prompts, splitting a CoT into its reasoning
and its answer sentence, choosing rationales, and turning a multi-task loss mix into token weights.

The loss mix. Multi-task baselines (MT-CoT, distilling step-by-step, SCOTT) define their loss as a convex mix of
per-task losses, each the mean over that task's target tokens: L = sum_k c_k * mean_k(token NLL). The shared
trainer computes sum(weight * NLL) / (number of supervised tokens), so giving every token of task k the weight
c_k * N / N_k (N_k: the task's target tokens in the whole training set, N: all target tokens) makes that sum's
expectation exactly the mix, while the mean token weight stays 1 (the same scale as plain SFT).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..grading import ANSWER_PHRASE, final_answer_sentence
from ..prompting import student_prompt
from ..records import Example, Rationale, WeightedSequence
from .base import MethodInputs, TrainingStage
from .encode import ANSWER, RATIONALE, Encoded, encode, tokens_in_spans, weighted_sequence

# --- parameters ------------------------------------------------------------------------------------------------


def check_params(method: str, params: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """`defaults` updated with `params`; an unknown key or a value of the wrong type is an error naming both."""
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(f"method {method!r}: unknown parameter(s) {unknown}; known: {sorted(defaults)}")
    merged = dict(defaults)
    for key, value in params.items():
        default = defaults[key]
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ValueError(f"method {method!r}: parameter {key!r} must be true or false, got {value!r}")
        if isinstance(default, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"method {method!r}: parameter {key!r} must be a number, got {value!r}")
        if isinstance(default, str) and not isinstance(value, str):
            raise ValueError(f"method {method!r}: parameter {key!r} must be a string, got {value!r}")
        if isinstance(default, tuple):
            if isinstance(value, str) or not isinstance(value, Iterable):
                raise ValueError(f"method {method!r}: parameter {key!r} must be a list, got {value!r}")
            value = tuple(value)
        merged[key] = value
    return merged


def check_fraction(method: str, name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"method {method!r}: parameter {name!r} must lie in [0, 1], got {value}")
    return float(value)


# --- prompts and rationale text ---------------------------------------------------------------------------------


def tagged_prompt(example: Example, *, prefix: str = "", suffix: str = "", style: str = "plain",
                  tokenizer: Any = None, method: str = "") -> str:
    """The student prompt with a task tag before or after it (plain style only: a tag around a chat template
    would sit outside the conversation the model was tuned on)."""
    if (prefix or suffix) and style != "plain":
        raise ValueError(f"method {method!r} adds task tags to the prompt and supports prompt_style 'plain' only, got {style!r}")
    return prefix + student_prompt(example, style, tokenizer) + suffix  # type: ignore[arg-type]


def split_answer_sentence(text: str) -> tuple[str, str]:
    """(reasoning, answer sentence) of a CoT: split at the last "Therefore, the answer is"; ("text", "") if absent."""
    text = text.strip()
    at = answer_start(text)
    if at is None:
        return text, ""
    return text[:at].rstrip(), text[at:]


def answer_start(cot: str) -> int | None:
    """Character index in `cot` where its answer sentence starts, or None without one."""
    at = cot.rfind(ANSWER_PHRASE)
    return at if at >= 0 else None


def answer_tail(answer: str) -> str:
    """What follows "Therefore, the answer is" for `answer`: "(B)." (the target of an answer-completion task)."""
    answer = answer.strip()
    return answer + ("" if answer.endswith(".") else ".")


# --- choosing rationales ----------------------------------------------------------------------------------------


def examples_by_id(inputs: MethodInputs) -> dict[str, Example]:
    return {e.id: e for e in inputs.examples}


def correct_rationales(inputs: MethodInputs, origins: Sequence[str]) -> list[tuple[Example, Rationale]]:
    """Graded-correct rationales of the given origins whose question is among the examples, in input order.

    Rationales not yet graded (correct is None) are an error: a baseline must never train on unchecked CoTs.
    """
    by_id = examples_by_id(inputs)
    chosen = []
    for r in inputs.rationales:
        if r.origin not in origins or r.example_id not in by_id:
            continue
        if r.correct is None:
            raise ValueError(f"rationale {r.id!r} is not graded (correct is None); grade rationales before compiling")
        if r.correct:
            chosen.append((by_id[r.example_id], r))
    return chosen


# --- compiling multi-task sequences -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """One sequence of a multi-task recipe before its weights are known."""

    id: str
    example_id: str
    task: str  # which loss term of the mix it belongs to
    encoded: Encoded
    segments: list[int]


def encode_piece(inputs: MethodInputs, *, id: str, example_id: str, task: str, prompt: str, target: str,
                 answer_from: int | None) -> Piece:
    """Encode a (prompt, target); target characters from `answer_from` on are the answer segment (None: none,
    0: all). The EOS token joins the segment of the token before it."""
    enc = encode(inputs.tokenizer, prompt, target, encoder_decoder=inputs.encoder_decoder)
    if answer_from is None:
        segments = [RATIONALE] * len(enc.target_ids)
    elif answer_from == 0:
        segments = [ANSWER] * len(enc.target_ids)  # includes a separator token with an empty character span
    else:
        in_answer = tokens_in_spans(enc.target_offsets, [(answer_from, len(target))])
        segments = [ANSWER if hit else RATIONALE for hit in in_answer]
        if len(segments) > 1 and enc.target_offsets[-1][0] == enc.target_offsets[-1][1]:
            segments[-1] = segments[-2]
    return Piece(id, example_id, task, enc, segments)


def answer_and_rationale_stage(
    inputs: MethodInputs, p: Mapping[str, Any], *, method: str, answer_tag: tuple[str, str],
    rationale_tag: tuple[str, str], keep_answer_sentence: bool,
) -> TrainingStage:
    """The two tagged tasks of MT-CoT and distilling step-by-step, for every example with a correct CoT.

    Task "answer", once per example: prefix + prompt + suffix (answer_tag) -> "Therefore, the answer is X.".
    Task "rationale", once per correct CoT: the same with rationale_tag -> the CoT, whole or without its answer
    sentence. Each example's answer piece comes first, then its CoTs in input order; a CoT left empty is
    skipped. Loss: p["alpha"] * L_answer + (1 - p["alpha"]) * L_rationale. `p`: the checked recipe parameters.
    """
    alpha = check_fraction(method, "alpha", p["alpha"])

    def prompt(ex: Example, tag: tuple[str, str]) -> str:
        return tagged_prompt(ex, prefix=tag[0], suffix=tag[1], style=p["prompt_style"], tokenizer=inputs.tokenizer,
                             method=method)

    pieces: list[Piece] = []
    answered: set[str] = set()
    for ex, r in correct_rationales(inputs, p["origins"]):
        if ex.id not in answered:
            answered.add(ex.id)
            pieces.append(encode_piece(inputs, id=f"{method}/{ex.id}/answer", example_id=ex.id, task="answer",
                                       prompt=prompt(ex, answer_tag), target=final_answer_sentence(ex.answer),
                                       answer_from=0))
        cot = r.text.strip()
        target = cot if keep_answer_sentence else split_answer_sentence(cot)[0]
        if target:
            pieces.append(encode_piece(inputs, id=f"{method}/{r.id}/rationale", example_id=ex.id, task="rationale",
                                       prompt=prompt(ex, rationale_tag), target=target,
                                       answer_from=answer_start(target) if keep_answer_sentence else None))
    sequences = compile_pieces(pieces, {"answer": alpha, "rationale": 1.0 - alpha}, method)
    eval_tags = {"prefix": answer_tag[0], "suffix": answer_tag[1]}
    return TrainingStage(name=method, sequences=sequences, extra={"eval_prompt": eval_tags})


def mix_weights(token_counts: Mapping[str, int], coefficients: Mapping[str, float]) -> dict[str, float]:
    """Per-token weight of each task so that the trainer's token-mean loss is sum_k c_k * mean_k (module doc).

    Tasks with no tokens drop out and the other coefficients are renormalised to sum to 1.
    """
    present = {k: c for k, c in coefficients.items() if token_counts.get(k, 0) > 0 and c > 0}
    total_c = sum(present.values())
    total_n = sum(token_counts.get(k, 0) for k in present)
    return {k: (present[k] / total_c) * total_n / token_counts[k] if k in present else 0.0 for k in coefficients}


def compile_pieces(pieces: Sequence[Piece], coefficients: Mapping[str, float], method: str) -> list[WeightedSequence]:
    """WeightedSequences with every token of a task weighted by `mix_weights`; zero-weight tasks are dropped."""
    counts: dict[str, int] = {}
    for p in pieces:
        counts[p.task] = counts.get(p.task, 0) + len(p.encoded.target_ids)
    weights = mix_weights(counts, coefficients)
    return [
        weighted_sequence(p.encoded, id=p.id, weights=weights[p.task], segments=p.segments, method=method,
                          example_id=p.example_id)
        for p in pieces
        if weights[p.task] > 0
    ]


# --- evaluation prompts -----------------------------------------------------------------------------------------

EvalPrompt = Callable[..., str]
EVAL_PROMPTS: dict[str, EvalPrompt] = {}  # methods whose student is evaluated on a prompt other than student_prompt


def eval_prompt(method: str, example: Example, style: str = "plain", tokenizer: Any = None,
                params: dict[str, Any] | None = None) -> str:
    """The prompt to evaluate `method`'s student with (built with `params`, the recipe's parameters): the
    method's own (e.g. "[label] " + prompt for step-by-step) or, for most methods, student_prompt."""
    if method in EVAL_PROMPTS:
        return EVAL_PROMPTS[method](example, style, tokenizer, params)
    return student_prompt(example, style, tokenizer)  # type: ignore[arg-type]
