"""The combined recipe: MoRSD's selection feeding EDIT, with CoPeD's correctness-aware task and weighting on top.

No paper tries this combination; every part comes from an existing recipe, and each can be dropped:
  selection   the study runs MoRSD's selection over the teacher's graded CoTs (the "selection" need, configured
              by params["selection"]); `selection: null` drops it ("without MoRSD selection": every CoT counts)
  stage "sft" EDIT's stage 1 on the selected correct teacher CoTs and the rectified ones. With `coped` (the default) these are
              CoPeD's generation task, joined by its status task over the same CoTs and the Std-CoT student's
              own samples, under the CAW instance weights; `coped: null` is plain EDIT stage 1 ("without CoPeD")
  stage "krsl" EDIT's key-step learning on the dual pairs whose correct side survived the selection (every pair
              without one); `stages: [sft]` drops it ("without KRSL")
Every other parameter is EDIT's (edit.EditParams); student_samples and student_temperature configure the student
samples CoPeD reviews, as for `coped`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydantic import Field

from ..errors import CotdistillError
from .base import Method, MethodInputs, Need, TrainingStage, register
from .coped import CopedConfig, coped_sequences
from .edit import EditParams, krsl_stage, sft_stage, stage1_rationales
from .params import parse_params
from .std_cot import require_tokenizer, sft_sequences

NAME = "combined"


class CombinedParams(EditParams):
    coped: CopedConfig | None = Field(default_factory=CopedConfig)  # None: plain EDIT stage 1


def needs(params: dict[str, Any]) -> tuple[Need, ...]:
    """The upstream stages this configuration uses: a dropped part drops the stage that feeds it."""
    wanted: list[Need] = ["rationales", "pairs"]
    coped = params.get("coped", {})
    if coped is not None and coped.get("status_task", True):
        wanted.append("student_rationales")
    if params.get("selection", {}) is not None:
        wanted.append("selection")
    return tuple(wanted)


def build(inputs: MethodInputs, params: dict[str, Any]) -> list[TrainingStage]:
    p = parse_params(CombinedParams, NAME, params)
    tokenizer = require_tokenizer(inputs, NAME)
    # With a selection, stage 1 draws on the teacher CoTs it kept plus the rectified (and corrupted) ones, which
    # MoRSD does not choose among (its candidates are the teacher's own samples).
    pool = inputs
    if inputs.selected is not None:
        kept = {r.id for r in inputs.selected}
        made = [r for r in inputs.rationales if r.origin in ("rectified", "corrupted") and r.id not in kept]
        pool = replace(inputs, rationales=[*inputs.selected, *made], pairs=())
    stages: list[TrainingStage] = []
    if "sft" in p.stages:
        rationales = stage1_rationales(pool, p.rectified)
        if not rationales:
            raise CotdistillError(f"method {NAME!r}: no correct teacher or rectified CoT for stage 1")
        stats = {"rectified": p.rectified, "selected": inputs.selected is not None, "stage1_cots": len(rationales)}
        if p.coped is None:
            stages.append(sft_stage(sft_sequences(inputs, rationales, NAME), p, extra={"stats": stats}))
        else:
            sequences, counts = coped_sequences(inputs.examples, rationales, inputs.student_rationales, tokenizer,
                                                p.coped)
            stages.append(sft_stage(sequences, p, instance_weighting="coped",
                                    extra={"coped": p.coped.weighting.model_dump(), "stats": {**stats, **counts}}))
    if "krsl" in p.stages:
        pairs = list(inputs.pairs)
        if inputs.selected is not None:  # a pair whose correct side the selection dropped teaches nothing kept
            in_pool = {r.id for r in pool.rationales}
            pairs = [pair for pair in pairs if pair.chosen.id in in_pool]
        stages.append(krsl_stage(inputs, pairs, p, after_sft="sft" in p.stages))
    return stages


register(Method(NAME, build, needs=needs,
                summary="MoRSD-selected correct and rectified CoTs -> EDIT (stage 1 with CoPeD's task and CAW "
                        "weights, then KRSL on pairs whose correct side was kept)"))
