"""DPO on EDIT's dual CoTs, trained by TRL's DPOTrainer (not by the shared weighted trainer).

Each DualPair becomes one TRL preference row: prompt = student_prompt(example), chosen = " " + correct CoT,
rejected = " " + wrong CoT (no leading space for an encoder-decoder student, the same convention as
methods/encode.py; TRL appends the EOS itself). DPO usually starts from an SFT model, so by default the recipe
first trains Std-CoT on the graded-correct teacher and rectified CoTs (EDIT's stage 1, D+ ∪ D-+), making this
baseline "EDIT with DPO in place of KRSL"; `sft_first: false` skips that stage.

How the integrator runs it: build() returns [sft stage (weighted sequences, ordinary trainer), dpo stage]. The
dpo stage has no sequences and extra = {"trainer": "dpo", "rows": [...], "beta": ...}; run it with
`train_dpo(model_path_of_previous_stage, tokenizer, stage.extra["rows"], DPOSettings(beta=...), out_dir)`.
The student is evaluated on the ordinary student prompt. TRL's DPO handles causal LMs only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..prompting import student_prompt
from ..records import DualPair, Example
from .base import Method, MethodInputs, TrainingStage, register
from .common import check_params, compile_pieces, correct_rationales, encode_piece, answer_start, examples_by_id

NAME = "dpo"
DEFAULTS: dict[str, Any] = {
    "beta": 0.1, "sft_first": True, "sft_origins": ("teacher", "rectified"), "prompt_style": "plain",
}


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
    p = check_params(NAME, params, DEFAULTS)
    if p["beta"] <= 0:
        raise ValueError(f"method {NAME!r}: parameter 'beta' must be positive, got {p['beta']}")
    style = p["prompt_style"]
    stages = []
    if p["sft_first"]:
        pieces = [
            encode_piece(inputs, id=f"{NAME}/{r.id}/sft", example_id=ex.id, task="cot",
                         prompt=student_prompt(ex, style, inputs.tokenizer), target=r.text.strip(),
                         answer_from=answer_start(r.text.strip()))
            for ex, r in correct_rationales(inputs, p["sft_origins"])
        ]
        stages.append(TrainingStage(name=f"{NAME}-sft", sequences=compile_pieces(pieces, {"cot": 1.0}, NAME)))
    rows = dpo_rows(inputs.pairs, examples_by_id(inputs), style=style, tokenizer=inputs.tokenizer,
                    encoder_decoder=inputs.encoder_decoder)
    stages.append(TrainingStage(name=NAME, sequences=[], extra={"trainer": "dpo", "rows": rows, "beta": p["beta"]}))
    return stages


@dataclass
class DPOSettings:
    """The knobs of a DPO run; every other DPOConfig field keeps TRL's default."""

    beta: float = 0.1
    learning_rate: float = 5e-7
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_length: int = 1024
    loss_type: str = "sigmoid"  # TRL's name for the original DPO loss
    seed: int = 42
    device: str = "auto"  # "cpu" forces the CPU
    bf16: bool = False
    logging_steps: int = 10


def _settings(settings: DPOSettings | Mapping[str, Any] | None) -> DPOSettings:
    if settings is None or isinstance(settings, DPOSettings):
        return settings or DPOSettings()
    known = {f.name for f in fields(DPOSettings)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"DPO settings: unknown key(s) {unknown}; known: {sorted(known)}")
    return DPOSettings(**settings)


def train_dpo(model_path: str | Path | Any, tokenizer: Any, rows: Sequence[Mapping[str, str]],
              settings: DPOSettings | Mapping[str, Any] | None, out_dir: str | Path) -> dict[str, Any]:
    """Run trl.DPOTrainer on `rows` from `model_path` (a folder, or a loaded causal LM) and save the result in
    out_dir (model and tokenizer). Returns the final training metrics (loss, reward accuracy and margins)."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    s = _settings(settings)
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
    metrics["settings"] = asdict(s)
    return metrics


register(Method(NAME, build, needs=("rationales", "pairs"),
                summary="DPO (TRL) on dual CoTs, after Std-CoT SFT on D+ and rectified CoTs"))
