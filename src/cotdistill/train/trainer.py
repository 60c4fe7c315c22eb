"""WeightedTrainer: transformers.Trainer with the weighted loss, and `train_stages` that runs a method's stages.

Building on `transformers.Trainer` keeps accelerate, DDP, FSDP, DeepSpeed, checkpoints, resume and `report_to`
working unchanged; only the loss and its normaliser are ours (see loss.py for the formula).

Normalisation: the Trainer gathers one optimizer step's micro-batches before running them and hands each
`compute_loss` call `num_items_in_batch`. We count that ourselves (every label != -100, the collators having
already masked the positions nothing can predict) and always sum it over processes, so N is the global number
of supervised tokens of the step. Each process returns world_size * local_sum / N: DDP averages gradients over
processes, which turns this into sum_over_all_processes / N, the gradient of one big batch.
"""

from __future__ import annotations

import inspect
import json
import math
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from ..config import LoraConfig
from ..errors import CotdistillError
from ..methods.base import TrainingStage
from ..records import atomic_write_text
from .collate import (IGNORE, LOSS_KEYS, GroupCollator, check_packing_isolates, group_features, make_collator,
                      sequence_features)
from .loss import instance_weighting, weighted_token_loss

log = logging.getLogger(__name__)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model under DDP/accelerate and PEFT wrappers (LoRA layers stay injected in it)."""
    while hasattr(model, "module"):
        model = model.module
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


def _is_encoder_decoder(model: torch.nn.Module) -> bool:
    return bool(getattr(getattr(_unwrap(model), "config", None), "is_encoder_decoder", False))


def hidden_state_path(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """(decoder, lm_head) when the loss may project hidden states itself; None means use the model's logits.

    Needs a causal LM whose forward takes `logits_to_keep` (so it skips its own full-vocabulary projection) and
    whose logits are a plain linear map of the last hidden state (no soft-capping or logit scaling).
    """
    inner = _unwrap(model)
    config = getattr(inner, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return None
    if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None) not in (None, 1, 1.0):
        return None
    if "logits_to_keep" not in inspect.signature(inner.forward).parameters:
        return None
    head, decoder = inner.get_output_embeddings(), inner.get_decoder()
    if head is None or decoder is None or decoder is inner:
        return None
    return decoder, head


class WeightedTrainer(Trainer):
    """A Trainer whose loss is `weighted_token_loss` over the collators' weight tensors."""

    loss_is_scaled_for_ga = True  # our normaliser already spans the accumulated step

    def __init__(self, *args: Any, negative_nll_cap: float | None = None, instance_weighting_name: str | None = None,
                 instance_weighting_params: dict[str, Any] | None = None, chunk_size: int = 1024, chunked: bool = True, epoch_decay: float | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.epoch_decay = epoch_decay
        self.negative_nll_cap = negative_nll_cap
        # fail at construction on a bad name or bad parameters
        self.weighting = instance_weighting(instance_weighting_name, instance_weighting_params)
        self.chunk_size = chunk_size
        self.chunked = chunked
        self.last_segment_nll: torch.Tensor | None = None  # of the last micro-batch, for callbacks and tests
        self.last_instance_weights: torch.Tensor | None = None  # the weights applied to it (static x dynamic)

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None):
        """With `epoch_decay` g: the learning rate is multiplied by g after every epoch (EDIT's StepLR, no warmup)."""
        if self.epoch_decay is None or self.lr_scheduler is not None:
            return super().create_scheduler(num_training_steps, optimizer)
        batches = math.ceil(len(self.train_dataset) / (self.args.per_device_train_batch_size * self.args.world_size))
        per_epoch = max(1, batches // self.args.gradient_accumulation_steps)
        gamma = self.epoch_decay
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer or self.optimizer,
                                                              lambda step: gamma ** (step // per_epoch))
        return self.lr_scheduler

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device) -> torch.Tensor | None:
        if not batch_samples or "labels" not in batch_samples[0]:
            return None
        count = sum(int(b["labels"].ne(IGNORE).sum()) for b in batch_samples)
        total = torch.tensor(count, device=device, dtype=torch.long)
        if self.accelerator.num_processes > 1:
            total = self.accelerator.gather(total.reshape(1)).sum()
        return total

    def compute_loss(self, model: torch.nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: torch.Tensor | int | None = None):
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        extras = {k: inputs.pop(k) for k in LOSS_KEYS}
        inputs["use_cache"] = False  # a cache would also switch off packed-sequence masking
        if _is_encoder_decoder(model):
            inputs["decoder_input_ids"] = _unwrap(model).prepare_decoder_input_ids_from_labels(labels=labels)
            outputs = model(**inputs)
            mask = labels.ne(IGNORE)
            states, head = outputs.logits[mask], None
            pick = lambda t: t[mask]  # noqa: E731
        else:
            path = hidden_state_path(model) if self.chunked and not self.is_fsdp_enabled else None
            mask = labels[:, 1:].ne(IGNORE)
            pick = lambda t: t[:, 1:][mask]  # noqa: E731  # position t-1 predicts label t
            if path is None:
                outputs = model(**inputs)
                states, head = outputs.logits[:, :-1][mask], None
            else:
                decoder, head = path
                captured: list[torch.Tensor] = []
                hook = decoder.register_forward_hook(
                    lambda _m, _i, out: captured.append(out[0] if isinstance(out, tuple) else out.last_hidden_state))
                try:
                    outputs = model(**inputs, logits_to_keep=1)
                finally:
                    hook.remove()
                states = captured[-1][:, :-1][mask]
        normaliser = num_items_in_batch if num_items_in_batch is not None else mask.sum()
        scale = self.accelerator.num_processes if num_items_in_batch is not None else 1
        result = weighted_token_loss(
            states, pick(labels), pick(extras["token_weights"]), pick(extras["token_instance"]),
            extras["instance_weights"], torch.clamp(torch.as_tensor(normaliser, device=states.device), min=1),
            head=head, token_segments=pick(extras["token_segments"]), negative_nll_cap=self.negative_nll_cap,
            weighting=self.weighting, instance_tasks=extras["instance_tasks"], chunk_size=self.chunk_size,
        )
        self.last_segment_nll, self.last_instance_weights = result.segment_nll, result.instance_weights
        loss = result.loss * scale
        return (loss, outputs) if return_outputs else loss


@dataclass
class TrainSettings:
    """Run-wide training settings; a TrainingStage's own learning_rate/epochs override these."""

    learning_rate: float = 2e-4
    epochs: float = 1.0
    batch_size: int = 8  # per device
    grad_accum: int = 1
    max_length: int = 1024
    packing: bool = False  # padding-free packing (decoder-only models whose attention isolates sequences)
    lora: LoraConfig | None = None  # None: full fine-tuning
    scheduler: str = "linear"  # any transformers lr_scheduler_type
    epoch_decay: float | None = None  # instead of `scheduler`: lr x this after each epoch (EDIT: 0.95)
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    optim: str = "adamw_torch"
    max_grad_norm: float = 1.0
    seed: int = 42
    bf16: bool = False
    gradient_checkpointing: bool = False
    chunk_size: int = 1024  # supervised positions per vocabulary-projection chunk
    logging_steps: int = 10
    save_steps: int = 200  # checkpoint every N optimizer steps (resume point)
    save_total_limit: int = 2
    max_steps: int = -1  # > 0 caps each stage (smoke runs)
    report_to: list[str] = field(default_factory=lambda: ["none"])
    merge_final: bool = True  # fold a LoRA into the saved final model
    training_args: dict[str, Any] = field(default_factory=dict)  # passed to TrainingArguments (fsdp, deepspeed...)

    def for_stage(self, stage: TrainingStage) -> TrainSettings:
        """These settings with a recipe's per-stage schedule applied (the keys a recipe puts in `stage.extra`:
        weight_decay, lr_decay_per_epoch, warmup_ratio, max_length, and batch_size, an effective batch that
        sets gradient accumulation over the per-device batch and the processes). Batch sizes count batching
        units: sequences, or groups of sequences where a recipe groups them (EDIT's stage 2: pairs)."""
        extra = stage.extra
        changes: dict[str, Any] = {k: extra[k] for k in ("weight_decay", "warmup_ratio", "max_length") if k in extra}
        if "lr_decay_per_epoch" in extra:
            changes["epoch_decay"] = extra["lr_decay_per_epoch"]
        if "batch_size" in extra:
            per_step = self.batch_size * int(os.environ.get("WORLD_SIZE", "1"))
            changes["grad_accum"] = max(1, math.ceil(extra["batch_size"] / per_step))
        return replace(self, **changes)

    def arguments(self, output_dir: Path, stage: TrainingStage) -> TrainingArguments:
        warmup = {"warmup_steps": self.warmup_ratio} if self.warmup_ratio else {}
        values: dict[str, Any] = dict(
            output_dir=str(output_dir),
            learning_rate=stage.learning_rate if stage.learning_rate is not None else self.learning_rate,
            num_train_epochs=stage.epochs if stage.epochs is not None else self.epochs,
            per_device_train_batch_size=self.batch_size,
            gradient_accumulation_steps=self.grad_accum,
            lr_scheduler_type=self.scheduler, weight_decay=self.weight_decay, optim=self.optim,
            max_grad_norm=self.max_grad_norm, seed=self.seed, data_seed=self.seed, bf16=self.bf16,
            activation_checkpointing=self.gradient_checkpointing, logging_steps=self.logging_steps,
            save_strategy="steps", save_steps=self.save_steps, save_total_limit=self.save_total_limit,
            max_steps=self.max_steps, report_to=self.report_to, remove_unused_columns=False,
            label_names=["labels"], dataloader_drop_last=False, use_cpu=_cpu_only(), **warmup,
        )
        values.update(self.training_args)
        return TrainingArguments(**values)


def _cpu_only() -> bool:
    """No accelerator: tell accelerate so, else processes from `accelerate launch` would not form a gloo group."""
    mps = getattr(torch.backends, "mps", None)
    return not torch.cuda.is_available() and not (mps is not None and mps.is_available())


def _units(stage: TrainingStage, settings: TrainSettings, encoder_decoder: bool) -> list[list[dict[str, Any]]]:
    """The stage's training set as batching units (collate.group_features): a group is never split."""
    features = [sequence_features(s, encoder_decoder=encoder_decoder, max_length=settings.max_length)
                for s in stage.sequences]
    skipped = sum(f is None for f in features)
    if skipped:
        log.warning("stage %s: %d sequences have no target token within max_length=%d and are skipped",
                    stage.name, skipped, settings.max_length)
    units = group_features(stage.sequences, features)
    if not units:
        raise CotdistillError(f"stage '{stage.name}' has no sequence with a target token to train on")
    return units


def _load(path: str | Path, dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    from ..models import hf_copy_of

    folder = str(hf_copy_of(str(path)))
    config = AutoConfig.from_pretrained(folder)
    cls = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
    return cls.from_pretrained(folder, dtype=dtype)


def add_lora(model: PreTrainedModel, lora: LoraConfig) -> torch.nn.Module:
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    task = "SEQ_2_SEQ_LM" if _is_encoder_decoder(model) else "CAUSAL_LM"
    return get_peft_model(model, PeftLoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                target_modules=lora.target_modules, task_type=task))


def stage_lora(stage: TrainingStage, settings: TrainSettings) -> LoraConfig | None:
    """The LoRA a stage trains, None for full fine-tuning: the stage's own choice (`extra["lora"]`: false, true
    for the run's LoRA or defaults, or a LoRA config) where a recipe makes one, else the run's."""
    own = stage.extra.get("lora")
    if own is None:
        return settings.lora
    if own is True:
        return settings.lora or LoraConfig()
    if own is False:
        return None
    return own if isinstance(own, LoraConfig) else LoraConfig(**own)


def merge_lora(model: torch.nn.Module) -> PreTrainedModel:
    """Fold a PEFT LoRA into its base weights and return the plain transformers model (no-op without one)."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


def _save(model: torch.nn.Module, tokenizer: Any, folder: Path) -> None:
    """Save through a staging folder, so a crash never leaves a half-written model where resume looks."""
    staging = folder.with_name(folder.name + ".partial")
    model.save_pretrained(staging)
    if tokenizer is not None:
        tokenizer.save_pretrained(staging)
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    os.replace(staging, folder)


def stage_trainer(model: torch.nn.Module, tokenizer: Any, stage: TrainingStage, settings: TrainSettings,
                  stage_dir: Path, callbacks: Sequence[TrainerCallback] = ()) -> WeightedTrainer:
    """The WeightedTrainer for one stage: its schedule, its batching units, its loss settings."""
    stage_settings = settings.for_stage(stage)
    encoder_decoder = _is_encoder_decoder(model)
    pad_id = getattr(tokenizer, "pad_token_id", None) if tokenizer is not None else None
    collator = make_collator(encoder_decoder=encoder_decoder, packing=settings.packing, pad_token_id=pad_id)
    return WeightedTrainer(
        model=model, args=stage_settings.arguments(stage_dir / "checkpoints", stage),
        train_dataset=_units(stage, stage_settings, encoder_decoder), data_collator=GroupCollator(collator),
        callbacks=list(callbacks), negative_nll_cap=stage.negative_nll_cap,
        instance_weighting_name=stage.instance_weighting,
        instance_weighting_params=stage.extra.get(stage.instance_weighting or "", {}),
        chunk_size=settings.chunk_size, epoch_decay=stage_settings.epoch_decay,
    )


def train_stages(model_path_or_model: str | Path | PreTrainedModel, tokenizer: Any, stages: Sequence[TrainingStage],
                 settings: TrainSettings, out_dir: str | Path,
                 callbacks: Sequence[TrainerCallback] = ()) -> Path:
    """Run `stages` in order and save the final model and tokenizer to `out_dir`; rerun to resume.

    Layout: out_dir/stages/NN-name/{checkpoints, base, adapter | model} and out_dir/progress.json (the last
    finished stage and where its weights are). A rerun skips finished stages, rebuilds the model they left and
    resumes the unfinished stage from its last Trainer checkpoint. With a LoRA, a stage with merge_lora_before
    folds the previous adapter into the base (saved as its `base`) and trains a fresh adapter.
    """
    out = Path(out_dir)
    progress_file = out / "progress.json"
    progress: dict[str, Any] = json.loads(progress_file.read_text()) if progress_file.exists() else {"done": -1}
    given = model_path_or_model if isinstance(model_path_or_model, torch.nn.Module) else None
    # progress.json names folders relative to out_dir, so a run folder can move between attempts.
    base_path = progress.get("base")
    if base_path:
        model = _load(out / base_path)
    elif given is not None:
        model = given
    else:
        model = _load(model_path_or_model)
    if progress.get("adapter"):
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, out / progress["adapter"], is_trainable=True)
    encoder_decoder = _is_encoder_decoder(model)
    is_main = int(os.environ.get("RANK", "0")) == 0

    for index, stage in enumerate(stages):
        if index <= progress["done"]:
            continue
        stage_name = f"stages/{index:02d}-{stage.name}"
        stage_dir = out / stage_name
        set_seed(settings.seed)
        lora = stage_lora(stage, settings)
        if lora is not None:
            if stage.merge_lora_before and hasattr(model, "merge_and_unload"):
                model = merge_lora(model)
                if is_main and not (stage_dir / "base").exists():
                    stage_dir.mkdir(parents=True, exist_ok=True)
                    _save(model, None, stage_dir / "base")
                base_path = f"{stage_name}/base"
            if not hasattr(model, "merge_and_unload"):
                model = add_lora(model, lora)
        elif hasattr(model, "merge_and_unload"):  # full fine-tuning after a LoRA stage: train the merged weights
            model = merge_lora(model)
            model.requires_grad_(True)  # PEFT froze the base weights
        if settings.packing:
            if encoder_decoder:
                raise CotdistillError("packing is for decoder-only models; set packing off for an encoder-decoder")
            check_packing_isolates(model, _unwrap(model).config.vocab_size)
        trainer = stage_trainer(model, tokenizer, stage, settings, stage_dir, callbacks)
        launched = int(os.environ.get("WORLD_SIZE", "1"))
        if launched != trainer.accelerator.num_processes:
            raise CotdistillError(f"{launched} processes were launched but the Trainer sees "
                                  f"{trainer.accelerator.num_processes}: each would train alone")
        checkpoint_dir = stage_dir / "checkpoints"
        resume = get_last_checkpoint(str(checkpoint_dir)) if checkpoint_dir.is_dir() else None
        result = trainer.train(resume_from_checkpoint=resume)
        model = trainer.model
        lora_trained = hasattr(model, "merge_and_unload")
        saved_name = f"{stage_name}/{'adapter' if lora_trained else 'model'}"
        saved = out / saved_name
        if trainer.args.should_save:
            _save(model, None, saved)
        if not lora_trained:
            base_path = saved_name
        history = [*progress.get("stages", []), {"name": stage.name, "loss": result.training_loss}]
        progress = {"done": index, "base": base_path, "adapter": saved_name if lora_trained else None,
                    "stages": history}
        if trainer.args.should_save:
            atomic_write_text(progress_file, json.dumps(progress, indent=1))
        trainer.accelerator.wait_for_everyone()

    final = merge_lora(model) if settings.merge_final else model
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        final.save_pretrained(out)
        if tokenizer is not None:
            tokenizer.save_pretrained(out)
        record = {**asdict(settings), "lora": settings.lora.model_dump() if settings.lora else None}
        atomic_write_text(out / "train_settings.json", json.dumps(record, indent=1, default=str))
    return out
