"""What a method recipe is: artifacts in, training stages of weighted sequences out.

A recipe reads the artifacts the shared stages produced (examples, graded teacher rationales, dual pairs,
student rationales) and compiles them into one or more `TrainingStage`s. The trainer runs the stages in order,
each from the model the previous one left (merging a LoRA between stages when asked). Recipes never train,
generate or touch files: that keeps each one as short as the method section it implements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..records import DualPair, Example, Rationale, WeightedSequence


@dataclass
class MethodInputs:
    """The shared artifacts a recipe may draw on; a recipe names the ones it needs in `Method.needs`."""

    examples: Sequence[Example]  # the training questions, with gold answers
    rationales: Sequence[Rationale] = ()  # graded teacher rationales (several per question where sampled)
    pairs: Sequence[DualPair] = ()  # EDIT's dual CoTs
    student_rationales: Sequence[Rationale] = ()  # graded rationales sampled from a Std-CoT student (CoPeD)
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


@dataclass(frozen=True)
class Method:
    """A registered recipe: its name, the shared stages it needs, and the function that compiles it."""

    name: str
    build: Callable[[MethodInputs, dict[str, Any]], list[TrainingStage]]
    needs: tuple[str, ...] = ("rationales",)
    summary: str = ""


REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in REGISTRY:
        raise ValueError(f"method {method.name!r} is registered twice")
    REGISTRY[method.name] = method
    return method
