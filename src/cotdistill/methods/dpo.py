"""DPO on EDIT's dual CoTs, trained by TRL's DPOTrainer (not by the shared weighted trainer).

Each DualPair becomes one TRL preference row: prompt = student_prompt(example), chosen = " " + correct CoT,
rejected = " " + wrong CoT (no leading space for an encoder-decoder student, the same convention as
methods/encode.py; TRL appends the EOS itself). DPO starts from an SFT model: by default the recipe first trains
on exactly EDIT's stage-1 data, the correct teacher CoTs and the rectified ones (D+ ∪ D-+; `rectified: false`
drops D-+), with the schedule in `sft`; so this baseline is "EDIT with DPO in place of KRSL". `sft_first: false`
skips that stage.

The DPO step's settings are `beta` and `dpo` (learning rate, schedule, warmup, epochs, batch in pairs, ...); their
defaults are EDIT's Appendix A.8 setting for its DPO baseline: lr 1e-5, cosine schedule, warmup ratio 0.3,
beta 0.1, 10 epochs, batch 16.

How the integrator runs it: build() returns [sft stage (weighted sequences, ordinary trainer), dpo stage]. The
dpo stage has no sequences and extra = {"trainer": "dpo", "rows": [...], "beta": ..., "settings": {...}}; run it
with `train_dpo(model_path_of_previous_stage, tokenizer, stage.extra["rows"],
DPOSettings(beta=..., seed=..., **stage.extra["settings"]), out_dir)` (study.run_stages does).
The student is evaluated on the ordinary student prompt. TRL's DPO handles causal LMs only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from ..prompting import PromptStyle, student_prompt
from ..records import DualPair, Example
from .base import Method, MethodInputs, TrainingStage, register
from .common import examples_by_id
from .edit import stage1_rationales
from .params import Params, StageParams, parse_params
from .std_cot import sft_sequences

NAME = "dpo"


class DPOTraining(Params):
    """The DPO step's optimisation; every other DPOConfig field keeps TRL's default. Defaults: EDIT's A.8."""

    learning_rate: float = Field(1e-5, gt=0)
    scheduler: str = "cosine"  # any transformers lr_scheduler_type
    warmup_ratio: float = Field(0.3, ge=0, lt=1)
    epochs: float = Field(10.0, gt=0)
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = Field(16, ge=1)  # pairs per device and step
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_length: int = Field(1024, ge=1)
    loss_type: str = "sigmoid"  # TRL's name for the original DPO loss
    device: str = "auto"  # "cpu" forces the CPU
    bf16: bool = False
    logging_steps: int = Field(10, ge=1)


class DPOSettings(DPOTraining):
    """A whole DPO run: the recipe's training settings, its beta, and the run's seed."""

    beta: float = Field(0.1, gt=0)
    seed: int = 42


class DpoParams(Params):
    beta: float = Field(0.1, gt=0)
    sft_first: bool = True
    rectified: bool = True  # stage 1 on D+ and D-+, as EDIT's; false: D+ only
    prompt_style: PromptStyle = "plain"
    sft: StageParams = Field(default_factory=StageParams)  # stage-1 schedule; unset values: the run's settings
    dpo: DPOTraining = Field(default_factory=DPOTraining)


def dpo_rows(pairs: Sequence[DualPair], examples: Mapping[str, Example], *, style: str = "plain",
             tokenizer: Any = None, encoder_decoder: bool = False) -> list[dict[str, str]]:
    """TRL's standard (non-conversational) preference rows, one per pair whose example is known."""
    sep = "" if encoder_decoder else " "
    rows = []
    for pair in pairs:
        ex = examples.get(pair.example_id)
        if ex is None:
            raise ValueError(f"dual pair {pair.id!r}: example {pair.example_id!r} is not among the training examples")
        rows.append({
            "id": pair.id,
            "prompt": student_prompt(ex, style, tokenizer),  # type: ignore[arg-type]
            "chosen": sep + pair.chosen.text.strip(),
            "rejected": sep + pair.rejected.text.strip(),
        })
    return rows


def build(inputs: MethodInputs, params: dict[str, Any]) -> list[TrainingStage]:
    p = parse_params(DpoParams, NAME, params)
    stages = []
    if p.sft_first:
        sequences = sft_sequences(inputs, stage1_rationales(inputs, p.rectified, NAME), NAME, style=p.prompt_style)
        stages.append(TrainingStage(name=f"{NAME}-sft", sequences=sequences, learning_rate=p.sft.learning_rate,
                                    epochs=p.sft.epochs, extra=p.sft.trainer_extra()))
    rows = dpo_rows(inputs.pairs, examples_by_id(inputs), style=p.prompt_style, tokenizer=inputs.tokenizer,
                    encoder_decoder=inputs.encoder_decoder)
    stages.append(TrainingStage(name=NAME, sequences=[], extra={"trainer": "dpo", "rows": rows, "beta": p.beta,
                                                                "settings": p.dpo.model_dump()}))
    return stages


def train_dpo(model_path: str | Path | Any, tokenizer: Any, rows: Sequence[Mapping[str, str]],
              settings: DPOSettings | Mapping[str, Any] | None, out_dir: str | Path) -> dict[str, Any]:
    """Run trl.DPOTrainer on `rows` from `model_path` (a folder, or a loaded causal LM) and save the result in
    out_dir (model and tokenizer). Returns the final training metrics (loss, reward accuracy and margins)."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    s = settings if isinstance(settings, DPOSettings) else parse_params(DPOSettings, NAME, dict(settings or {}))
    if not rows:
        raise ValueError("train_dpo: no preference rows (the run has no dual pairs)")
    for i, row in enumerate(rows):
        missing = [k for k in ("prompt", "chosen", "rejected") if not isinstance(row.get(k), str)]
        if missing:
            raise ValueError(f"train_dpo: row {i} lacks text field(s) {missing}")
    model = model_path
    if isinstance(model_path, (str, Path)):
        model = AutoModelForCausalLM.from_pretrained(str(model_path), torch_dtype=torch.float32)
    if getattr(model.config, "is_encoder_decoder", False):
        raise ValueError("train_dpo: TRL's DPOTrainer supports causal LMs only, not encoder-decoder students")
    data = Dataset.from_list([{k: row[k] for k in ("prompt", "chosen", "rejected")} for row in rows])
    out = Path(out_dir)
    config = DPOConfig(
        output_dir=str(out), beta=s.beta, learning_rate=s.learning_rate, num_train_epochs=s.epochs,
        max_steps=s.max_steps, per_device_train_batch_size=s.batch_size,
        gradient_accumulation_steps=s.gradient_accumulation_steps, max_length=s.max_length,
        lr_scheduler_type=s.scheduler, warmup_steps=s.warmup_ratio,  # a float below 1 is a ratio of the steps
        loss_type=[s.loss_type], seed=s.seed, use_cpu=s.device == "cpu", bf16=s.bf16,
        logging_steps=s.logging_steps, save_strategy="no", report_to="none", dataset_num_proc=None,
    )
    trainer = DPOTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer)
    result = trainer.train()
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    metrics: dict[str, Any] = {"train_loss": float(result.training_loss), "steps": float(trainer.state.global_step)}
    if logged:
        metrics.update({k: float(v) for k, v in logged[-1].items() if isinstance(v, (int, float))})
    metrics["settings"] = s.model_dump()
    return metrics


register(Method(NAME, build, needs=("rationales", "pairs"),
                summary="DPO (TRL) on dual CoTs, after SFT on EDIT's stage-1 data (D+ and rectified CoTs)"))
