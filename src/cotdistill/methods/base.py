"""What a method recipe is: artifacts in, training stages of weighted sequences out.

A recipe reads the artifacts the shared stages produced (examples, graded teacher rationales, dual pairs,
student rationales) and compiles them into one or more `TrainingStage`s. The trainer runs the stages in order,
each from the model the previous one left (merging a LoRA between stages when asked). Recipes never train,
generate or touch files: that keeps each one as short as the method section it implements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..records import DualPair, Example, Rationale, WeightedSequence


@dataclass
class MethodInputs:
    """The shared artifacts a recipe may draw on; a recipe names the ones it needs in `Method.needs`."""

    examples: Sequence[Example]  # the training questions, with gold answers
    rationales: Sequence[Rationale] = ()  # graded teacher rationales (several per question where sampled)
    pairs: Sequence[DualPair] = ()  # EDIT's dual CoTs
    student_rationales: Sequence[Rationale] = ()  # graded rationales sampled from a Std-CoT student (CoPeD)
    selected: Sequence[Rationale] | None = None  # the rationales MoRSD's selection kept; None: no selection ran
    tokenizer: Any = None  # the student's tokenizer: recipes compile token ids for it
    encoder_decoder: bool = False  # T5-style student: prompt feeds the encoder, target the decoder


@dataclass
class TrainingStage:
    """One training run over `sequences`; fields left None take the run's training settings."""

    name: str
    sequences: list[WeightedSequence]
    learning_rate: float | None = None
    epochs: float | None = None
    negative_nll_cap: float | None = None  # EDIT's threshold: stop pushing a wrong key token below this
    merge_lora_before: bool = False  # fold the previous stage's LoRA into the base and start a new one
    instance_weighting: str | None = None  # name of a dynamic per-instance weighting, e.g. "coped"
    extra: dict[str, Any] = field(default_factory=dict)


# What a recipe can ask the study for. "rationales" (graded teacher CoTs) and "pairs" (dual CoTs) come from the
# teacher; "student_rationales" are sampled from the seed's Std-CoT student on the training questions;
# "selection" runs MoRSD's selection over the teacher's rationales and fills MethodInputs.selected.
Need = Literal["rationales", "pairs", "student_rationales", "selection"]
NEEDS: tuple[Need, ...] = ("rationales", "pairs", "student_rationales", "selection")

# The params keys that configure a need's upstream stage. The study reads them and hands the recipe the rest.
UPSTREAM_PARAMS: dict[Need, tuple[str, ...]] = {
    "student_rationales": ("student_samples", "student_temperature"),
    "selection": ("selection",),
}


def recipe_params(params: dict[str, Any]) -> dict[str, Any]:
    """`params` without the keys that configure upstream stages (UPSTREAM_PARAMS)."""
    upstream = {k for keys in UPSTREAM_PARAMS.values() for k in keys}
    return {k: v for k, v in params.items() if k not in upstream}


@dataclass(frozen=True)
class Method:
    """A registered recipe: its name, the upstream stages it needs, and the function that compiles it.

    `needs` is a tuple of Need, or a function of the method's params returning one (an ablation that drops a
    part of a recipe also drops the stage that feeds it).
    """

    name: str
    build: Callable[[MethodInputs, dict[str, Any]], list[TrainingStage]]
    needs: tuple[Need, ...] | Callable[[dict[str, Any]], tuple[Need, ...]] = ("rationales",)
    summary: str = ""
    trains: bool = True  # False: the study evaluates the initial student as it is (zero_shot)

    def needs_for(self, params: dict[str, Any]) -> tuple[Need, ...]:
        needs = self.needs(params) if callable(self.needs) else self.needs
        unknown = set(needs) - set(NEEDS)
        if unknown:
            raise ValueError(f"method {self.name!r} needs {sorted(unknown)}; known needs: {', '.join(NEEDS)}")
        return needs


REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in REGISTRY:
        raise ValueError(f"method {method.name!r} is registered twice")
    REGISTRY[method.name] = method
    return method
