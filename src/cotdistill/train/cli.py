"""`cotdistill train`: WeightedSequence JSONL + a student in, a trained model folder out (rerun to resume).

Works under `accelerate launch` (DDP/FSDP/DeepSpeed from the accelerate config) as well as plain python.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..errors import CotdistillError


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sequences", required=True, nargs="+", metavar="JSONL",
                   help="WeightedSequence JSONL file(s); several files run as consecutive stages")
    p.add_argument("--model", required=True, help="student: a transformers folder, hub name, .gguf or alias")
    p.add_argument("--out", required=True, help="folder for the trained model (and its checkpoints)")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=8, help="per device")
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--max-steps", type=int, default=-1, help="cap optimizer steps per stage")
    p.add_argument("--packing", action="store_true", help="padding-free packing (decoder-only models)")
    p.add_argument("--lora-r", type=int, default=0, help="LoRA rank; 0 trains every weight")
    p.add_argument("--lora-alpha", type=int, default=16)
    p.add_argument("--lora-targets", default="q_proj,v_proj")
    p.add_argument("--merge-between", action="store_true",
                   help="with several --sequences and a LoRA: merge each stage's LoRA before the next (EDIT)")
    p.add_argument("--negative-nll-cap", type=float, help="drop negative-weight tokens whose NLL reached this")
    p.add_argument("--instance-weighting", help="a registered dynamic instance weighting (default: none)")
    p.add_argument("--scheduler", default="linear", help="a transformers lr_scheduler_type")
    p.add_argument("--epoch-decay", type=float, help="instead: lr x this after every epoch (EDIT uses 0.95)")
    p.add_argument("--optim", default="adamw_torch")
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--save-steps", type=int, default=200)
    p.add_argument("--logging-steps", type=int, default=10)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--report-to", default="none", help="comma-separated Trainer integrations, e.g. tensorboard")


def train_command(args: argparse.Namespace) -> None:
    from pathlib import Path

    from ..config import LoraConfig
    from ..methods.base import TrainingStage
    from ..records import WeightedSequence, read_jsonl
    from .trainer import TrainSettings, train_stages

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    stages = []
    for i, path in enumerate(args.sequences):
        sequences = read_jsonl(path, WeightedSequence)
        if not sequences:
            raise CotdistillError(f"{path}: no sequences")
        stages.append(TrainingStage(name=Path(path).stem, sequences=sequences,
                                    negative_nll_cap=args.negative_nll_cap,
                                    instance_weighting=args.instance_weighting,
                                    merge_lora_before=args.merge_between and i > 0))
    lora = None
    if args.lora_r > 0:
        lora = LoraConfig(r=args.lora_r, alpha=args.lora_alpha, target_modules=args.lora_targets.split(","))
    settings = TrainSettings(
        learning_rate=args.lr, epochs=args.epochs, batch_size=args.batch_size, grad_accum=args.grad_accum,
        max_length=args.max_length, max_steps=args.max_steps, packing=args.packing, lora=lora,
        scheduler=args.scheduler, epoch_decay=args.epoch_decay, optim=args.optim, max_grad_norm=args.max_grad_norm,
        save_steps=args.save_steps, logging_steps=args.logging_steps, seed=args.seed, bf16=args.bf16,
        report_to=args.report_to.split(","),
    )
    out = train_stages(args.model, _tokenizer(args.model), stages, settings, args.out)
    print(f"trained model: {out}", file=sys.stderr)


def _tokenizer(model: str):
    """The student's tokenizer, saved next to the trained weights; None (with a warning) for a bare model folder."""
    from ..models import load_tokenizer

    try:
        return load_tokenizer(model)
    except (CotdistillError, OSError, ValueError, TypeError) as e:
        logging.getLogger(__name__).warning("no tokenizer saved with the model: %s", e)
        return None
