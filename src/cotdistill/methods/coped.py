"""CoPeD: a correctness-aware task trained jointly with rationale generation, and the CAW instance weights.

Sequences (docs/methods.md, "CoPeD"):
  generation   prompt q                                   -> a correct teacher rationale (ends in the answer)
  correct      prompt q + rationale body + correct tag    -> "Therefore, the answer is a."
  incorrect    prompt q + rationale body + incorrect tag  -> a revised, correct rationale (ends in the answer)
Rationales for the status task come from the teacher and from a Std-CoT student, each graded by answer match.
Each target token is labelled 0 (rationale) or 1 (the closing answer sentence and the EOS after it), so that
the trainer can give the weighting below each instance's rationale and answer losses.

Which rationales go where is chosen by origin: generation trains on correct teacher and rectified CoTs (D+ and
D-+); the status task reviews what the teacher and the student wrote themselves (origins "teacher" and
"student", not the rectified or corrupted CoTs made from them); a wrong CoT is revised by its own rectification
when the rationale set holds one.

The Correctness-Aware Weighted loss reweights instances by their detached combined loss
s_i = L_rationale,i + L_answer,i (mean NLLs; an empty segment counts 0), comparing an instance only with the
instances of the same task in the micro-batch (compare "task"):
  w_i = |G| * softmax_{j in G}(direction * s_j / temperature)_i   for i in task group G (normalisation "mean")
so each task's weights average 1 in every batch and the task mix stays the one the data set. Comparing across
tasks (compare "batch", one softmax over the batch) starves the generation task: an answer-only status instance
has no rationale loss, so its s is a fraction of a generation instance's and, under direction -1, it takes
nearly all the weight (docs/methods.md has the measurement).
Default direction -1: a low combined loss marks a rationale that supports the answer well, and those are the
instances CoPeD wants the student to lean on; noisy rationales (high loss: they fail to support the answer)
are turned down rather than chased, as +1 (hard-example emphasis) would do. Temperature 1: losses are in nats,
so an instance one nat worse than another gets e^-1 of its weight, a mild reweighting that never zeroes a batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Literal

import torch
from pydantic import Field

from ..config import Section, parse_section
from ..errors import CotdistillError
from ..grading import closing_sentence_start, final_answer_sentence
from ..prompting import PromptStyle, student_prompt
from ..records import Example, Rationale, WeightedSequence
from ..similarity import ngram_similarity
from ..train.loss import INSTANCE_WEIGHTINGS, InstanceWeighting
from .base import Method, MethodInputs, Need, TrainingStage, register
from .encode import ANSWER, RATIONALE, Encoded, encode, tokens_in_spans, weighted_sequence

Normalisation = Literal["mean", "sum", "none"]
Compare = Literal["task", "batch"]
GENERATION_ORIGINS = ("teacher", "rectified")
REVIEWED_ORIGINS = ("teacher",)  # of MethodInputs.rationales; the student's own come from student_rationales


class CopedWeighting(Section):
    """The CAW loss's open choices; the trainer builds its weight function from these (instance_weighting_fn)."""

    temperature: float = Field(1.0, gt=0)  # float("inf") gives uniform weights
    direction: Literal[-1, 1] = -1  # -1: low combined loss weighs more; +1: high loss weighs more
    normalisation: Normalisation = "mean"
    clamp_min: float | None = None  # applied after normalisation, when set
    clamp_max: float | None = None
    compare: Compare = "task"  # "task": softmax among the instances of one task; "batch": over the whole batch


class CopedConfig(Section):
    """Every open choice of CoPeD's data format (docs/methods.md, "CoPeD", says why each default)."""

    correct_tag: str = "[Rationale status: correct]"
    incorrect_tag: str = "[Rationale status: incorrect]"
    generation_task: bool = True  # train question -> rationale alongside the status task
    status_task: bool = True  # false: generation alone, so CAW weighting is the only change from Std-CoT (ablation)
    teacher_in_status_task: bool = True  # teacher rationales too, not only the student's
    keep_rationale_answer: bool = False  # leave the rationale's own closing sentence in the status prompt
    revise_with: Literal["similar", "first"] = "similar"  # which correct rationale revises a wrong one
    ngram: int = Field(3, ge=1)  # n-gram size for "similar"
    prompt_style: PromptStyle = "plain"
    weighting: CopedWeighting = Field(default_factory=CopedWeighting)


# ---- the CAW weights -----------------------------------------------------------------------------------------


def coped_instance_weights(segment_losses: torch.Tensor, temperature: float = 1.0, direction: float = -1.0,
                           normalisation: Normalisation = "mean", clamp_min: float | None = None,
                           clamp_max: float | None = None, tasks: torch.Tensor | None = None,
                           compare: Compare = "task") -> torch.Tensor:
    """Per-instance weights [B] from per-instance (rationale, answer) mean NLLs [B, 2]; no gradient flows.

    `tasks` [B] (integers; None: one task) groups the instances: with compare "task" the normalisation runs within
    each group, with "batch" over all instances. normalisation "mean": |G| * softmax (weights average 1 in each
    group G, so the loss scale matches the unweighted loss); "sum": softmax (weights sum to 1 in each group);
    "none": exp(direction * s / temperature) as is (e.g. exp(-s)).
    """
    if segment_losses.ndim != 2 or segment_losses.shape[1] != 2:
        raise ValueError(f"segment_losses must have shape [B, 2], got {list(segment_losses.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if normalisation not in ("mean", "sum", "none"):
        raise ValueError(f"normalisation must be mean, sum or none, got {normalisation!r}")
    z = direction * segment_losses.detach().float().sum(dim=1) / temperature
    if tasks is None or compare == "batch":
        tasks = torch.zeros(z.shape[0], dtype=torch.long, device=z.device)
    weights = torch.exp(z)
    if normalisation != "none":
        for task in tasks.unique():
            group = tasks == task
            weights[group] = torch.softmax(z[group], dim=0) * (int(group.sum()) if normalisation == "mean" else 1)
    if clamp_min is not None or clamp_max is not None:
        weights = weights.clamp(min=clamp_min, max=clamp_max)
    return weights.to(segment_losses.dtype)


def instance_weighting_fn(params: dict[str, Any] | CopedWeighting | None = None) -> InstanceWeighting:
    """The trainer's hook: fn(segment_losses [B, 2], tasks [B]) -> weights [B], configured by a stage's
    extra["coped"]."""
    w = params if isinstance(params, CopedWeighting) else parse_section(CopedWeighting, params or {}, "coped.weighting")
    return lambda losses, tasks: coped_instance_weights(losses, w.temperature, w.direction, w.normalisation,
                                                        w.clamp_min, w.clamp_max, tasks, w.compare)


# ---- formatting ----------------------------------------------------------------------------------------------


def answer_sentence_span(text: str) -> tuple[int, int]:
    """Characters of the closing answer sentence: from the last "Therefore, the answer is" to the end."""
    return closing_sentence_start(text), len(text)


def answer_segments(encoded: Encoded, target: str) -> list[int]:
    """Per target token: ANSWER inside the closing sentence (and the EOS that ends it), else RATIONALE."""
    span = answer_sentence_span(target)
    if span[0] == span[1]:
        return [RATIONALE] * len(encoded.target_ids)
    inside = tokens_in_spans(encoded.target_offsets, [span])
    return [ANSWER if hit or a >= len(target) else RATIONALE for hit, (a, _) in zip(inside, encoded.target_offsets)]


def status_prompt(example: Example, rationale: Rationale, correct: bool, config: CopedConfig, tokenizer) -> str:
    """The student prompt, the rationale under review, and its status tag on a line of its own."""
    text = rationale.text.strip()
    shown = text if config.keep_rationale_answer else text[:closing_sentence_start(text)].rstrip()
    tag = config.correct_tag if correct else config.incorrect_tag
    return f"{student_prompt(example, config.prompt_style, tokenizer)} {shown}\n{tag}"


def _sequence(tokenizer, prompt: str, target: str, sid: str, example_id: str, task: str) -> WeightedSequence:
    enc = encode(tokenizer, prompt, target)
    return weighted_sequence(enc, id=sid, segments=answer_segments(enc, target), method="coped",
                             example_id=example_id, task=task)


def pick_revision(wrong: Rationale, correct: Sequence[Rationale], revise_with: str = "similar",
                  ngram: int = 3) -> Rationale | None:
    """The correct rationale that revises `wrong`: its own counterpart when there is one (its rectification, or
    the correct rationale it was corrupted from), else the correct rationale of the same question closest to it
    in word n-grams (the fewest steps to change), or the first."""
    own = [r for r in correct if r.parent == wrong.id or r.id == wrong.parent]
    if own:
        return own[0]
    if not correct:
        return None
    if revise_with == "first":
        return correct[0]
    similarity = ngram_similarity(ngram)
    return max(correct, key=lambda r: similarity(r, wrong))  # max keeps the first of equals


def coped_sequences(examples: Sequence[Example], rationales: Sequence[Rationale], student: Sequence[Rationale],
                    tokenizer, config: CopedConfig) -> tuple[list[WeightedSequence], dict[str, int]]:
    """All CoPeD sequences and counts of what went in (and what had no correct rationale to revise with).

    `rationales`: the teacher side (teacher, rectified and corrupted CoTs), each used by origin (module doc).
    """
    by_id = {e.id: e for e in examples}
    correct = [r for r in rationales if r.correct is True and r.origin in GENERATION_ORIGINS]
    correct_by_question: dict[str, list[Rationale]] = defaultdict(list)
    for r in correct:
        correct_by_question[r.example_id].append(r)
    sequences: list[WeightedSequence] = []
    counts = {"generation": 0, "status_correct": 0, "status_incorrect": 0, "no_revision": 0, "ungraded": 0}

    def example_of(r: Rationale) -> Example:
        if r.example_id not in by_id:
            raise CotdistillError(f"coped: rationale {r.id} names example {r.example_id!r}, which is not in the inputs")
        return by_id[r.example_id]

    if config.generation_task:
        for r in correct:
            example = example_of(r)
            sequences.append(_sequence(tokenizer, student_prompt(example, config.prompt_style, tokenizer),
                                       r.text.strip(), f"coped/gen/{r.id}", example.id, "generation"))
            counts["generation"] += 1
    teacher = [r for r in rationales if r.origin in REVIEWED_ORIGINS] if config.teacher_in_status_task else []
    for r in [*teacher, *student] if config.status_task else []:
        if r.correct is None:
            counts["ungraded"] += 1
            continue
        example = example_of(r)
        if r.correct:
            target = final_answer_sentence(example.answer)
        else:
            revision = pick_revision(r, correct_by_question[r.example_id], config.revise_with, config.ngram)
            if revision is None:
                counts["no_revision"] += 1
                continue
            target = revision.text.strip()
        task = "status_correct" if r.correct else "status_incorrect"
        counts[task] += 1
        prompt = status_prompt(example, r, r.correct, config, tokenizer)
        sequences.append(_sequence(tokenizer, prompt, target, f"coped/status/{r.id}", example.id, task))
    return sequences, counts


def build(inputs: MethodInputs, params: dict[str, Any]) -> list[TrainingStage]:
    config = parse_section(CopedConfig, params, "coped")
    if inputs.tokenizer is None:
        raise CotdistillError("coped: MethodInputs.tokenizer is required to compile token ids")
    sequences, counts = coped_sequences(inputs.examples, inputs.rationales, inputs.student_rationales,
                                        inputs.tokenizer, config)
    return [TrainingStage(name="coped", sequences=sequences, instance_weighting="coped",
                          extra={"coped": config.weighting.model_dump(), "counts": counts})]


def needs(params: dict[str, Any]) -> tuple[Need, ...]:
    """The student's own samples feed the status task only; without it the recipe needs the teacher's CoTs."""
    return ("rationales", "student_rationales") if params.get("status_task", True) else ("rationales",)


METHOD = register(Method(
    name="coped",
    build=build,
    needs=needs,
    summary="CoPeD: predict the answer from correct rationales, revise incorrect ones, CAW instance weights",
))

INSTANCE_WEIGHTINGS["coped"] = instance_weighting_fn  # the trainer builds it from the stage's extra["coped"]
