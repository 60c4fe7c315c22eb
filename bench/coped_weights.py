"""CoPeD's CAW weights per task type during training, at the lab study's settings: compare "batch" vs "task".

The lab study's data and CoPeD inputs (--config, default configs/lab_study.yaml; the table in docs/methods.md was
measured at commit adb9eab, on that config's earlier setting: web_of_lies with 3 people, a scripted teacher with
30% mistakes and two CoTs per question, a `lab-tiny` student of seed 0, the rationales its Std-CoT student samples)
come from the study's own stages, cached in --run-dir. CoPeD's stage then trains with the study's settings (lr 3e-3,
cosine over 8 epochs, warmup 5%, batch 32) and stops after --steps optimizer steps, twice from the same start:
  compare "batch": one softmax over the whole micro-batch (the weighting before this bench was written)
  compare "task":  a softmax among the instances of each task (generation, status correct, status incorrect)
and logs, per step, the mean CAW weight of each task's instances, their spread within the batch, and the tasks'
combined losses (what the student has learnt of each).

    OMP_NUM_THREADS=1 PYTHONPATH=src python bench/coped_weights.py
Last line: the generation task's mean weight over the run, "task" over "batch" (the starvation undone).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict, deque
from pathlib import Path

import torch
from transformers import TrainerCallback

from cotdistill.config import LoraConfig, MethodConfig, load_config
from cotdistill.methods import REGISTRY, MethodInputs
from cotdistill.models import load_tokenizer
from cotdistill.pipeline import RunFolder
from cotdistill.records import Example, Rationale, read_jsonl
from cotdistill.study import (lab_examples_stage, lab_teacher_stage, student_init_stage, student_rationales_stage,
                              train_stage)
from cotdistill.train.trainer import TrainSettings, _load, stage_trainer

TASKS = ("generation", "status_correct", "status_incorrect")


class StopAfter(TrainerCallback):
    """Stops at `steps` while keeping the full run's schedule (warmup and cosine over all epochs)."""

    def __init__(self, steps: int):
        self.steps = steps

    def on_step_end(self, args, state, control, **kwargs):
        control.should_training_stop = state.global_step >= self.steps


def coped_inputs(config: Path, run_dir: Path, seed: int) -> tuple[MethodInputs, Path, dict, dict]:
    """CoPeD's inputs exactly as the study builds them (its stages, cached in `run_dir`)."""
    study = load_config(config).study
    spec = next(m for m in study.methods if m.name == "coped")
    run = RunFolder(run_dir)
    examples_file = lab_examples_stage(run, study.lab)
    teacher_dir = lab_teacher_stage(run, study.teacher, examples_file)
    shared = {"examples": examples_file, "rationales": teacher_dir / "rationales.jsonl", "pairs": teacher_dir / "pairs.jsonl"}
    init_dir = student_init_stage(run, study.student, seed, [examples_file, shared["rationales"]])
    std_dir, _, _ = train_stage(run, MethodConfig(name="std_cot"), seed, init_dir, shared, study.train)
    student = student_rationales_stage(run, std_dir, examples_file, int(spec.params.get("student_samples", 1)),
                                       float(spec.params.get("student_temperature", 0.7)), study.eval.max_new_tokens,
                                       seed)
    inputs = MethodInputs(examples=[e for e in read_jsonl(examples_file, Example) if e.split == "train"],
                          rationales=read_jsonl(shared["rationales"], Rationale),
                          student_rationales=read_jsonl(student, Rationale), tokenizer=load_tokenizer(str(init_dir)))
    params = {k: v for k, v in spec.params.items() if k not in ("student_samples", "student_temperature")}
    return inputs, init_dir, params, dict(study.train)


def per_step(inputs: MethodInputs, init_dir: Path, params: dict, train: dict, compare: str, steps: int,
             seed: int, out: Path) -> list[dict[str, dict[str, float]]]:
    """Train CoPeD for `steps` steps with the given comparison; per step and task: the instances' mean weight,
    the weights' standard deviation, and their mean combined loss s (rationale + answer mean NLL)."""
    (stage,) = REGISTRY["coped"].build(inputs, params)
    stage.extra["coped"] = {**stage.extra["coped"], "compare": compare}
    settings = {**train, "seed": seed, "save_steps": 10**6, "logging_steps": 10**6}
    if isinstance(settings.get("lora"), dict):
        settings["lora"] = LoraConfig(**settings["lora"])
    trainer = stage_trainer(_load(init_dir), inputs.tokenizer, stage, TrainSettings(**settings), out,
                            callbacks=[StopAfter(steps)])
    batch_tasks: deque[list[str]] = deque()  # the collator runs ahead of the loss: first in, first out
    collate = trainer.data_collator

    def recording_collator(groups):
        batch_tasks.append([f["task"] for group in groups for f in group])
        return collate(groups)

    trainer.data_collator = recording_collator
    seen: list[dict[str, list[tuple[float, float]]]] = []  # per step and task: (weight, combined loss)
    compute_loss = trainer.compute_loss

    def recording_loss(model, batch, *args, **kwargs):
        loss = compute_loss(model, batch, *args, **kwargs)
        tasks = batch_tasks.popleft()
        weights, losses = trainer.last_instance_weights.tolist(), trainer.last_segment_nll.sum(1).tolist()
        if len(seen) <= trainer.state.global_step:
            seen.append(defaultdict(list))
        for task, w, s in zip(tasks, weights, losses):
            seen[trainer.state.global_step][task].append((w, s))
        return loss

    trainer.compute_loss = recording_loss
    trainer.train()
    return [{t: summary(step[t]) for t in TASKS if step[t]} for step in seen[:steps]]


def summary(pairs: list[tuple[float, float]]) -> dict[str, float]:
    weights = torch.tensor([w for w, _ in pairs])
    return {"weight": weights.mean().item(), "weight_std": weights.std(correction=0).item(),
            "loss": sum(s for _, s in pairs) / len(pairs)}


def mean_over(rows: list[dict[str, dict[str, float]]], task: str, key: str) -> float:
    values = [row[task][key] for row in rows if task in row]
    return sum(values) / len(values)


def table(runs: dict[str, list[dict[str, dict[str, float]]]], bin_size: int) -> str:
    """Markdown: per bin of steps, each task's mean weight under each comparison."""
    head = "| steps | " + " | ".join(f"{t} ({c})" for c in runs for t in TASKS) + " |"
    lines = [head, "|---|" + "---:|" * (len(runs) * len(TASKS))]
    steps = min(len(r) for r in runs.values())
    for start in range(0, steps, bin_size):
        rows = {c: r[start:start + bin_size] for c, r in runs.items()}
        cells = [f"{mean_over(rows[c], t, 'weight'):.3f}" for c in runs for t in TASKS]
        lines.append(f"| {start + 1}–{min(start + bin_size, steps)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/lab_study.yaml")
    parser.add_argument("--run-dir", default="runs/bench_coped_weights")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--bin", type=int, default=10, help="steps per table row")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    run_dir = Path(args.run_dir)
    inputs, init_dir, params, train = coped_inputs(Path(args.config), run_dir, args.seed)
    prepared = time.perf_counter()
    runs = {c: per_step(inputs, init_dir, params, train, c, args.steps, args.seed, run_dir / f"coped-{c}")
            for c in ("batch", "task")}
    (run_dir / "coped_weights.json").write_text(json.dumps(runs, indent=1))
    print(table(runs, args.bin))
    for c, rows in runs.items():
        last = rows[-args.bin:]
        print(f"compare {c}, steps 1-{args.steps}: " + "; ".join(
            f"{t} weight {mean_over(rows, t, 'weight'):.3f} (std within the batch {mean_over(rows, t, 'weight_std'):.3f})"
            for t in TASKS))
        print(f"compare {c}, combined loss s over the last {len(last)} steps: "
              + ", ".join(f"{t} {mean_over(last, t, 'loss'):.3f}" for t in TASKS))
    print(f"inputs {prepared - started:.0f} s (cached after the first run), training {time.perf_counter() - prepared:.0f} s")
    ratio = mean_over(runs["task"], "generation", "weight") / mean_over(runs["batch"], "generation", "weight")
    print(f"generation weight, task / batch: {ratio:.1f}")


if __name__ == "__main__":
    main()
