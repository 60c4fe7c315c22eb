"""MoRSD's training stage: Std-CoT on the rationales the selection kept (selection itself: cotdistill.select).

Rationale Difficulty needs the student, so the recipe declares the "selection" need: the study runs
`select.select_rationales` as its own stage (configured by params["selection"]) and hands the kept rationales in
as `MethodInputs.selected`; without a selection (a recipe test) every rationale is a candidate.
`params["selected_ids"]`, when given, narrows them to the ids a saved score table marked kept. With "student" in
the selection's `origins`, the student's own samples are candidates beside the teacher's CoTs (a teacher that
wrote one CoT per question leaves MoRSD nothing to choose among otherwise). Each kept rationale becomes question -> rationale + answer, exactly
as Std-CoT trains, with the closing answer sentence labelled as the answer segment.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..errors import CotdistillError
from ..prompting import student_prompt
from ..records import Rationale
from .base import Method, MethodInputs, Need, TrainingStage, register
from .coped import answer_segments
from .encode import encode, weighted_sequence
from .params import Params, StageParams, parse_params


def morsd_rationales(inputs: MethodInputs, params: dict[str, Any]) -> list[Rationale]:
    """The rationales to train on: the selection's (without one, the inputs of the selection's origins, the
    teacher's own CoTs by default), or those whose id is in params["selected_ids"]."""
    from ..select import SelectionConfig

    origins = SelectionConfig.from_params(params.get("selection") or {}).origins
    # a selection already kept only its origins' candidates (the study hands the recipe no `selection` params)
    candidates = list(inputs.selected) if inputs.selected is not None else \
        [r for r in inputs.rationales if r.origin in origins]
    selected = params.get("selected_ids")
    if selected is None:
        return candidates
    wanted = set(selected)
    missing = wanted - {r.id for r in candidates}
    if missing:
        raise CotdistillError(f"morsd: selected_ids names {len(missing)} rationale(s) of origin {origins} not in the "
                              f"inputs, e.g. {sorted(missing)[0]!r}")
    return [r for r in candidates if r.id in wanted]


class MorsdParams(Params):
    selected_ids: list[str] | None = None
    prompt_style: str = "plain"
    # the schedule; MoRSD's source trains a fixed number of updates, so on a smaller selection more epochs
    # (e.g. Std-CoT's epochs x its sequences / the selection's) give it as many updates as Std-CoT
    stage: StageParams = Field(default_factory=StageParams)
    selection: dict[str, Any] | None = None  # select.SelectionConfig's options, read by the study


def build(inputs: MethodInputs, params: dict[str, Any]) -> list[TrainingStage]:
    p = parse_params(MorsdParams, "morsd", params)
    if inputs.tokenizer is None:
        raise CotdistillError("morsd: MethodInputs.tokenizer is required to compile token ids")
    style = p.prompt_style
    by_id = {e.id: e for e in inputs.examples}
    sequences = []
    for r in morsd_rationales(inputs, params):
        example = by_id.get(r.example_id)
        if example is None:
            raise CotdistillError(f"morsd: rationale {r.id} names example {r.example_id!r}, not in the inputs")
        target = r.text.strip()
        enc = encode(inputs.tokenizer, student_prompt(example, style, inputs.tokenizer), target)
        sequences.append(weighted_sequence(enc, id=f"morsd/{r.id}", segments=answer_segments(enc, target),
                                           method="morsd", example_id=example.id))
    return [TrainingStage(name="morsd", sequences=sequences, learning_rate=p.stage.learning_rate,
                          epochs=p.stage.epochs, extra={**p.stage.trainer_extra(), "kept": len(sequences)})]


def needs(params: dict[str, Any]) -> tuple[Need, ...]:
    """The selection over the teacher's CoTs; with "student" among its `origins`, over the samples of the seed's
    Std-CoT student too (`student_samples` per question at `student_temperature`, as for CoPeD)."""
    from ..select import SelectionConfig

    origins = SelectionConfig.from_params(params.get("selection") or {}).origins
    return ("rationales", *(("student_rationales",) if "student" in origins else ()), "selection")


METHOD = register(Method(
    name="morsd",
    build=build,
    needs=needs,
    summary="MoRSD: Std-CoT on teacher rationales kept by accuracy, diversity and student-measured difficulty",
))
