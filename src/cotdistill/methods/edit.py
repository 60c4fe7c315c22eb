"""EDIT (mistakE-Driven key reasonIng step distillaTion): SFT on correct CoTs, then key-step learning on dual pairs.

Stage "sft": SFT on D+ (correct teacher CoTs) and D-+ (the teacher's rectifications of its wrong CoTs; drop them
with rectified=false for the paper's "w/o RWC" ablation). Wrong CoTs never enter this stage.
Stage "krsl": from the merged stage-1 model with a new LoRA and its own schedule. Per dual pair, the correct CoT
with weight alpha on its key tokens and the wrong CoT with -beta on its key tokens, 0 elsewhere (align.py); wrong
key tokens whose NLL already reaches `nll_threshold` are left alone (the trainer applies `negative_nll_cap`).
Both sides of a pair share the sequence `group` (the pair id), so the trainer keeps a pair in one batch, as EDIT
does, and counts stage 2's batch size in pairs.
`pair_kinds` and `error_types` select pairs for stage 2 (D+dual / D-dual, and the mistake-type study, which
filters on the wrong CoT's error_type).

Two variants of stage 2 are ours, not EDIT's (defaults keep EDIT): `gamma` > 0 puts a small weight on the
correct CoT's non-key tokens (EDIT's gamma is 0, which leaves the tokens copied between the two CoTs
unsupervised), and `negative_scope: first_wrong_step` keeps -beta only on the wrong key tokens inside the rejected
CoT's first wrong step (after it, a wrong CoT's steps are often sound reasoning from a wrong premise). Stage 2's
learning rate may be given relative to stage 1's (`stage2.learning_rate_ratio`; EDIT's is 5e-6 / 2e-4 = 0.025),
and `stage2.lora` chooses a LoRA or full fine-tuning for it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from .. import align
from ..errors import CotdistillError
from ..prompting import student_prompt
from ..records import DualPair, ErrorType, Rationale, WeightedSequence
from .base import Method, MethodInputs, TrainingStage, register
from .encode import tokens_in_spans, weighted_sequence
from .params import Params, StageParams, parse_params
from .std_cot import correct_teacher_rationales, example_of, examples_by_id, require_tokenizer, sft_sequences

NAME = "edit"


class KrslStageParams(StageParams):
    """Stage 2's schedule; its learning rate may be a multiple of stage 1's instead of a value."""

    learning_rate_ratio: float | None = Field(default=None, gt=0)  # lr = this x stage1.learning_rate

    @model_validator(mode="after")
    def _one_learning_rate(self) -> KrslStageParams:
        if self.learning_rate is not None and self.learning_rate_ratio is not None:
            raise ValueError("give learning_rate or learning_rate_ratio, not both")
        return self

    def trainer_extra(self) -> dict[str, Any]:
        return {k: v for k, v in super().trainer_extra().items() if k != "learning_rate_ratio"}


NegativeScope = Literal["all", "first_wrong_step"]


class EditParams(Params):
    alpha: float = Field(default=1.0, ge=0)  # weight of the correct CoT's key tokens
    beta: float = Field(default=0.025, ge=0)  # magnitude of the (negative) weight of the wrong CoT's key tokens
    # ours, not EDIT's: weight of the correct CoT's non-key target tokens (EDIT: 0)
    gamma: float = Field(default=0.0, ge=0)
    # ours, not EDIT's: "first_wrong_step" keeps -beta only on wrong key tokens inside the rejected CoT's
    # first_wrong_step span (EDIT: "all" wrong key tokens)
    negative_scope: NegativeScope = "all"
    nll_threshold: float | None = Field(default=20.0, gt=0)  # cap on pushing wrong key tokens; None: no cap
    stages: list[Literal["sft", "krsl"]] = Field(default_factory=lambda: ["sft", "krsl"], min_length=1)
    rectified: bool = True  # include D-+ (rectified wrong CoTs) in stage 1
    pair_kinds: list[Literal["positive", "negative"]] = Field(default_factory=lambda: ["positive", "negative"])
    error_types: list[ErrorType] | None = None  # keep pairs whose wrong CoT has one of these; None: all
    stage1: StageParams = Field(default_factory=lambda: StageParams(learning_rate=2e-4, epochs=15,
                                                                    lr_decay_per_epoch=0.95))
    stage2: KrslStageParams = Field(default_factory=lambda: KrslStageParams(learning_rate=5e-6, epochs=10,
                                                                            lr_decay_per_epoch=0.95))


def stage1_rationales(inputs: MethodInputs, rectified: bool, method: str = NAME) -> list[Rationale]:
    """D+ and, when asked, D-+: every correct teacher CoT, then every correct rectification, each once.

    Rectified CoTs are rationales of origin "rectified"; a rationale set written before they were (pairs holding
    rectified CoTs the set lacks) is an error rather than a stage 1 that silently lost D-+.
    """
    chosen: dict[str, Rationale] = {r.id: r for r in correct_teacher_rationales(inputs.rationales)}
    if rectified:
        known = {r.id for r in inputs.rationales}
        missing = [p.chosen.id for p in inputs.pairs if p.chosen.origin == "rectified" and p.chosen.id not in known]
        if missing:
            raise CotdistillError(
                f"method {method!r}: {len(missing)} rectified CoT(s) of the dual pairs are not among the rationales "
                f"(e.g. {missing[0]!r}); rewrite the rationale file with `cotdistill teach` or `cotdistill lab --pairs`")
        for r in inputs.rationales:
            if r.origin == "rectified" and r.correct is True:  # a rectification that misses the gold is not used
                chosen.setdefault(r.id, r)
    return list(chosen.values())


def select_pairs(pairs: list[DualPair], p: EditParams) -> tuple[list[DualPair], int]:
    """Pairs of the requested kinds and mistake types whose two sides are graded right and wrong; and how many
    were dropped as not dual (a correct 'rejected' or a wrong 'chosen')."""
    kept, invalid = [], 0
    for pair in pairs:
        if pair.kind not in p.pair_kinds:
            continue
        if p.error_types is not None and pair.rejected.error_type not in p.error_types:
            continue
        if pair.chosen.correct is False or pair.rejected.correct is True:
            invalid += 1
            continue
        kept.append(pair)
    return kept, invalid


def negative_span(pair: DualPair, scope: NegativeScope) -> tuple[int, int] | None:
    """The character span of the rejected CoT where -beta applies; None: all of it."""
    if scope == "all":
        return None
    if pair.rejected.first_wrong_step is None:
        # no silent fallback to "all": the row would then mix two losses under one name
        raise CotdistillError(
            f"method {NAME!r}: negative_scope 'first_wrong_step': pair {pair.id!r} has no first_wrong_step on its "
            f"wrong CoT {pair.rejected.id!r} (only the lab's scripted teacher records it); use negative_scope 'all'")
    return pair.rejected.first_wrong_step


def krsl_sequences(inputs: MethodInputs, pairs: list[DualPair], p: EditParams) -> tuple[list[WeightedSequence],
                                                                                          dict[str, int]]:
    """Chosen (alpha on key tokens, gamma elsewhere) then rejected (-beta on key tokens, in the negative scope) for
    each pair; all-zero sides are dropped."""
    tokenizer = require_tokenizer(inputs, NAME)
    examples = examples_by_id(inputs)
    out: list[WeightedSequence] = []
    counts = {"key_tokens": 0, "target_tokens": 0, "zero_weight_dropped": 0, "wrong_key_tokens_out_of_scope": 0}
    pair_examples = [example_of(examples, pair.chosen, f"pair {pair.id}: rationale") for pair in pairs]
    spans = [negative_span(pair, p.negative_scope) for pair in pairs]
    all_keys = align.key_token_weights_many(tokenizer, [(pair.chosen.text, pair.rejected.text) for pair in pairs],
                                            p.alpha, p.beta, prompts=[student_prompt(e) for e in pair_examples])
    for pair, example, span, keys in zip(pairs, pair_examples, spans, all_keys):
        chosen_weights = [w if key else p.gamma for w, key in zip(keys.correct_weights, keys.correct_key)]
        wrong_weights = keys.wrong_weights
        if span is not None:
            inside = tokens_in_spans(keys.wrong.target_offsets, [span])
            counts["wrong_key_tokens_out_of_scope"] += sum(k and not i for k, i in zip(keys.wrong_key, inside))
            wrong_weights = [w if i else 0.0 for w, i in zip(wrong_weights, inside)]
        sides = [(keys.correct, keys.correct_key, chosen_weights, "chosen"),
                 (keys.wrong, keys.wrong_key, wrong_weights, "rejected")]
        for encoded, key, weights, side in sides:
            counts["key_tokens"] += sum(key)
            counts["target_tokens"] += len(key)
            if not any(weights):
                counts["zero_weight_dropped"] += 1  # nothing to learn (no key tokens in scope, or alpha/beta 0)
                continue
            out.append(weighted_sequence(encoded, id=f"{pair.id}/{side}", weights=weights, method=NAME,
                                         example_id=example.id, group=pair.id))
    return out, counts


def sft_stage(sequences: list[WeightedSequence], p: EditParams, **fields: Any) -> TrainingStage:
    """Stage 1 under EditParams' stage-1 schedule; `fields` adds TrainingStage fields and `extra` entries."""
    extra = fields.pop("extra", {})
    return TrainingStage(name="sft", sequences=sequences, learning_rate=p.stage1.learning_rate,
                         epochs=p.stage1.epochs, extra={**p.stage1.trainer_extra(), **extra}, **fields)


def stage2_learning_rate(p: EditParams) -> float | None:
    """Stage 2's learning rate: its own, or its ratio times stage 1's; None leaves it to the run's settings."""
    if p.stage2.learning_rate_ratio is None:
        return p.stage2.learning_rate
    if p.stage1.learning_rate is None:
        raise CotdistillError(f"method {NAME!r}: stage2.learning_rate_ratio is relative to stage1.learning_rate, "
                              "which is not set")
    return p.stage2.learning_rate_ratio * p.stage1.learning_rate


def krsl_stage(inputs: MethodInputs, pairs: list[DualPair], p: EditParams, after_sft: bool) -> TrainingStage:
    """Stage 2: key-reasoning-step learning on the pairs `p` selects from `pairs`."""
    kept, invalid = select_pairs(pairs, p)
    if not kept:
        raise CotdistillError(f"method {NAME!r}: no dual pair left for stage 2 (kinds {p.pair_kinds}, "
                              f"error types {p.error_types}, {len(pairs)} pairs given)")
    sequences, counts = krsl_sequences(inputs, kept, p)
    return TrainingStage(
        name="krsl", sequences=sequences, learning_rate=stage2_learning_rate(p), epochs=p.stage2.epochs,
        negative_nll_cap=p.nll_threshold, merge_lora_before=after_sft,
        extra={**p.stage2.trainer_extra(), "stats": {
            "alpha": p.alpha, "beta": p.beta, "gamma": p.gamma, "negative_scope": p.negative_scope,
            "pairs": len(kept), "invalid_pairs_dropped": invalid, **counts}})


def build(inputs: MethodInputs, params: dict[str, Any]) -> list[TrainingStage]:
    p = parse_params(EditParams, NAME, params)
    stages: list[TrainingStage] = []
    if "sft" in p.stages:
        rationales = stage1_rationales(inputs, p.rectified)
        if not rationales:
            raise CotdistillError(f"method {NAME!r}: no correct teacher or rectified CoT for stage 1")
        stages.append(sft_stage(sft_sequences(inputs, rationales, NAME), p,
                                extra={"stats": {"rectified": p.rectified}}))
    if "krsl" in p.stages:
        stages.append(krsl_stage(inputs, list(inputs.pairs), p, after_sft="sft" in p.stages))
    return stages


register(Method(NAME, build, needs=("rationales", "pairs"),
                summary="SFT on correct and rectified CoTs, then key-token (edit-distance) learning on dual pairs"))
