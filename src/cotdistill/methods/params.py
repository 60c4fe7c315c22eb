"""Recipe parameters: a validated dict per method, and the settings of one training stage.

Recipes take their parameters as a plain dict (from a config's `methods[].params`); a pydantic model per recipe
rejects unknown keys and wrong types with a message naming the method and the field.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import LoraConfig
from ..errors import CotdistillError


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StageParams(Params):
    """One stage's schedule; None leaves the value to the run's training settings."""

    learning_rate: float | None = Field(default=None, gt=0)
    epochs: float | None = Field(default=None, gt=0)
    weight_decay: float | None = Field(default=None, ge=0)
    lr_decay_per_epoch: float | None = Field(default=None, gt=0, le=1)  # StepLR gamma applied once per epoch
    warmup_ratio: float | None = Field(default=None, ge=0, lt=1)
    batch_size: int | None = Field(default=None, ge=1)  # effective batch (sequences, or pairs in EDIT stage 2)
    max_length: int | None = Field(default=None, ge=1)  # prompt + target tokens
    # keep the epoch whose checkpoint scores best on the study's validation split (costs one validation
    # evaluation per epoch), rather than the last one
    select_epoch: bool = False
    # how this stage trains: None: as the run's training settings say; false: every weight (full fine-tuning,
    # folding in an earlier stage's LoRA first); true or a LoRA config: a LoRA (true: the run's, else defaults)
    lora: LoraConfig | bool | None = None

    def trainer_extra(self) -> dict[str, Any]:
        """The settings TrainingStage has no field for, for the trainer to read from `extra`.

        Recipes put what they measured while compiling (counts, the parameters used) under `extra["stats"]`,
        so every other key of `extra` is a training setting.
        """
        return self.model_dump(exclude={"learning_rate", "epochs"}, exclude_defaults=True)


P = TypeVar("P", bound=Params)


def parse_params(model: type[P], method: str, params: dict[str, Any] | None) -> P:
    try:
        return model.model_validate(params or {})
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "params"
        raise CotdistillError(f"method {method!r}: parameter '{field}': {first['msg']}") from None
