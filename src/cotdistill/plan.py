"""`cotdistill run CONFIG --dry-run` for a study: its plan and a cost estimate, without training or loading a model.

It loads the data as the study would (BB-sub's task files from the cache, fetched once if missing), carves the
validation split, and compiles every method's recipe with the student's tokenizer (read from the GGUF file or the
model folder; no weights), so sequence and token counts are the recipes' own. What the study would only learn by running is stood in for,
and the plan says so:
  * teacher outputs: read from `study.teacher_outputs` when that folder exists (the lab's scripted teacher is run
    in memory); otherwise one stand-in CoT of STAND_IN_COT_TOKENS per training question, STAND_IN_ACCURACY of them
    correct, every wrong one rectified and every right one corrupted (a pair each), as `teach` would aim for;
  * the Std-CoT student's samples (CoPeD, MoRSD with student candidates): copies of the teacher's CoTs;
  * MoRSD's selection: every correct candidate of its origins up to `top_k` per question (an upper bound).
Generation is counted at `max_new_tokens` per output (an upper bound: stop_after_answer ends most outputs sooner).
Time = tokens / the per-worker speeds in SPEEDS, divided over the study's workers.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import MethodConfig, RunConfig, StudyConfig
from .errors import CotdistillError
from .records import DualPair, Example, Rationale, read_jsonl

# code-davinci-002's BBH CoTs: mean length under SmolLM2's tokenizer (6,511 CoTs, median 176) and strict accuracy
STAND_IN_COT_TOKENS = 204
STAND_IN_ACCURACY = 0.74
PLAN_SAMPLE = 400  # recipes are compiled on at most this many training questions (every k-th), counts scaled up


@dataclass(frozen=True)
class Speed:
    """Tokens per second of one worker: training (forward + backward + update) and batched greedy generation.
    Scoring (MoRSD's Rationale Difficulty) is a forward pass only: taken as 3x the training rate."""

    train: float
    generate: float
    source: str


SPEEDS = {
    # bench/smollm2_speed.py, 2026-12-02: SmolLM2-135M, LoRA r64 on q/v, fp32, one thread, batch 4 (training) and
    # 8 (generation), on the project's 2-core machine while other jobs loaded it (load 4-6)
    "cpu": Speed(train=47.0, generate=18.0, source="measured: bench/smollm2_speed.py, 1 CPU thread, busy 2-core host"),
    # not measured here (no GPU was available): a conservative guess for SmolLM2-135M on one data-centre GPU
    # (bf16, batch 16 x 1024 training; HF generate at batch 64)
    "gpu": Speed(train=20_000.0, generate=2_000.0, source="assumed, not measured: one data-centre GPU"),
}


@dataclass
class Job:
    """One training (deduplicated as the study's stages are), sampling, selection or evaluation: its tokens."""

    train_tokens: int = 0
    generate_tokens: int = 0
    score_tokens: int = 0


def _stand_in_outputs(train: list[Example]) -> tuple[list[Rationale], list[DualPair]]:
    """What a teacher run would give, per training question: one CoT of about STAND_IN_COT_TOKENS tokens, right
    for the first STAND_IN_ACCURACY share of each task's questions, with its rectification or corruption."""
    from .grading import final_answer_sentence

    filler = " ".join(["step"] * STAND_IN_COT_TOKENS)
    rationales, pairs = [], []
    seen: Counter[str] = Counter()
    per_task = Counter(e.task for e in train)
    for e in train:
        seen[e.task] += 1
        right = seen[e.task] <= round(STAND_IN_ACCURACY * per_task[e.task])
        good = Rationale(id=f"{e.id}#stand-in", example_id=e.id, text=f"{filler}. {final_answer_sentence(e.answer)}",
                         answer=e.answer, correct=True, origin="teacher" if right else "rectified")
        bad = Rationale(id=f"{e.id}#stand-in-wrong", example_id=e.id, text=f"{filler} wrong. {final_answer_sentence('?')}",
                        answer="?", correct=False, origin="corrupted" if right else "teacher")
        if right:
            bad = bad.model_copy(update={"parent": good.id})
        else:
            good = good.model_copy(update={"parent": bad.id})
        rationales += [good, bad] if right else [bad, good]
        pairs.append(DualPair(id=f"{good.id}|{bad.id}", example_id=e.id, chosen=good, rejected=bad,
                              kind="positive" if right else "negative"))
    return rationales, pairs


def _teacher_outputs(cfg: RunConfig, train: list[Example]) -> tuple[list[Rationale], list[DualPair], str]:
    from .study import lab_teacher_outputs, training_only

    study = cfg.study
    assert study is not None
    if study.lab is not None:
        rationales, pairs = lab_teacher_outputs(study.teacher, train)
        return rationales, pairs, "the scripted lab teacher (run here, in memory)"
    folder = Path(study.teacher_outputs or "")
    if study.teacher_outputs and (folder / "rationales.jsonl").is_file():
        pairs_file = folder / "pairs.jsonl"
        return (training_only(read_jsonl(folder / "rationales.jsonl", Rationale), train),
                training_only(read_jsonl(pairs_file, DualPair), train) if pairs_file.is_file() else [],
                f"{folder} (read)")
    rationales, pairs = _stand_in_outputs(train)
    return rationales, pairs, (f"STAND-INS: {folder} does not exist yet; one CoT of ~{STAND_IN_COT_TOKENS} tokens "
                               f"per training question, {STAND_IN_ACCURACY:.0%} right, each rectified or corrupted")


def _tokenizer(study: StudyConfig, train: list[Example], rationales: list[Rationale]) -> Any:
    from .lab.students import SCRATCH_PRESETS, train_tokenizer
    from .models import load_tokenizer

    if study.student in SCRATCH_PRESETS:  # the study fits it on the same texts
        return train_tokenizer([e.question for e in train] + [r.text for r in rationales],
                               SCRATCH_PRESETS[study.student].vocab)
    return load_tokenizer(study.student)


def _selected(rationales: list[Rationale], selection: dict[str, Any]) -> list[Rationale]:
    """An upper bound on MoRSD's kept set: correct candidates of its origins, at most top_k per question."""
    from .select import SelectionConfig

    config = SelectionConfig.from_params(selection)
    per_question: Counter[str] = Counter()
    kept = []
    for r in rationales:
        if r.origin in config.origins and r.correct:
            per_question[r.example_id] += 1
            if config.keep != "top_k" or per_question[r.example_id] <= config.top_k:
                kept.append(r)
    return kept if config.keep != "fraction" else kept[:math.ceil(config.fraction * len(kept))]


def plan_study(cfg: RunConfig) -> str:
    """The plan of a study config as text: stages, questions per split, jobs, sequences, tokens, time."""
    from .lab.generate import evaluation_splits, lab_examples
    from .lab.students import SCRATCH_PRESETS
    from .methods import REGISTRY, MethodInputs, recipe_params
    from .runfolder import fingerprint
    from .study import (check_methods, default_workers, job_seeds, ood_splits, rows_to_run, stage_fingerprint,
                        study_examples, train_settings, training_parts, training_only,
                        with_validation_split)

    study = cfg.study
    if study is None:
        raise CotdistillError("--dry-run plans a study; this config has no `study` section")
    check_methods(study)
    if study.lab is not None:
        examples, splits = lab_examples(study.lab), evaluation_splits(study.lab)
    else:
        if isinstance(cfg.data, list):
            raise CotdistillError("a study trains on one data section; list several benchmarks in study.ood_data")
        examples = study_examples(cfg.data, study.ood_data)
        splits = {"IND": "test", **ood_splits(examples)}
    if study.validation is not None:
        examples = with_validation_split(examples, study.validation)
    train = [e for e in examples if e.split == "train"]
    if not train:
        raise CotdistillError("the study's data hold no training question")
    by_split = Counter(e.split for e in examples)
    rationales, pairs, source = _teacher_outputs(cfg, train)
    tokenizer = _tokenizer(study, train, rationales)
    outputs_line = (f"Teacher outputs: {source}: " + ", ".join(
        f"{n:,} {origin}" for origin, n in sorted(Counter(r.origin for r in rationales).items()))
        + f", {len(pairs):,} dual pairs")
    sample = train[::math.ceil(len(train) / PLAN_SAMPLE)]  # compiling every recipe on thousands of CoTs takes minutes
    scale = len(train) / len(sample)
    rationales, pairs = training_only(rationales, sample), training_only(pairs, sample)
    student_samples = [r.model_copy(update={"id": r.id + "#student", "origin": "student"})
                       for r in rationales if r.origin == "teacher"]
    settings = train_settings(study.train, study.seeds[0])
    gen = study.eval.max_new_tokens * study.eval.self_consistency

    lines = [f"# Plan: {cfg.run_dir}", "",
             "Shared stages: examples (data + OOD) -> validation split -> teacher outputs -> per seed: initial "
             "student [-> Std-CoT warm student -> its samples / MoRSD selection] -> training -> evaluation -> report",
             "", "Questions per split: " + ", ".join(f"{split} {n:,}" for split, n in sorted(by_split.items())),
             "Report columns: " + ", ".join(f"{label} ({by_split[split]:,})" for label, split in splits.items()),
             outputs_line, f"Student: {study.student}; seeds {study.seeds}", "",
             *([f"(Recipes compiled on every {math.ceil(len(train) / PLAN_SAMPLE)}th training question, "
                f"{len(sample):,} of {len(train):,}; counts scaled by {scale:.2f}.)", ""] if scale > 1 else []),
             "| method | seeds | stage | sequences | epochs | tokens per epoch |", "|---|---|---|---:|---:|---:|"]
    jobs: dict[tuple, Job] = {}
    built: dict[str, list[Any]] = {}

    def stages_of(spec: MethodConfig) -> list[Any]:
        key = json.dumps([spec.name, spec.params], sort_keys=True, default=str)
        if key not in built:
            needs = REGISTRY[spec.name].needs_for(spec.params)
            candidates = rationales + (student_samples if "student_rationales" in needs else [])
            inputs = MethodInputs(
                examples=sample, rationales=rationales, pairs=pairs,
                student_rationales=student_samples if "student_rationales" in needs else (),
                selected=_selected(candidates, spec.params.get("selection") or {}) if "selection" in needs else None,
                tokenizer=tokenizer)
            built[key] = REGISTRY[spec.name].build(inputs, recipe_params(spec.params))
        return built[key]

    def tokens(stage: Any) -> int:
        return round(scale * sum(len(s.prompt_ids) + len(s.target_ids) for s in stage.sequences))

    def train_job(spec: MethodConfig, seed: int) -> None:
        key = ("train", spec.name, json.dumps(recipe_params(spec.params), sort_keys=True, default=str), seed)
        if key in jobs:  # a shared stage (the warm Std-CoT student is the std_cot row's training)
            return
        jobs[key] = Job()
        chain = "init"
        for part in training_parts(stages_of(spec), settings):
            chain = fingerprint([chain, [stage_fingerprint(stage) for stage in part]])
            if ("part", chain, seed) in jobs:  # another row's part, trained once (study.run_stages)
                continue
            job = jobs[("part", chain, seed)] = Job()
            for stage in part:
                epochs = stage.epochs if stage.epochs is not None else settings.epochs
                job.train_tokens += round(tokens(stage) * epochs)
                if stage.extra.get("select_epoch") and study.validation is not None:
                    job.generate_tokens += (math.ceil(epochs) * min(study.validation.max_eval, by_split["validation"])
                                            * gen)

    for spec in rows_to_run(study):
        seeds = job_seeds(study, spec)
        shown = ", ".join("–" if s is None else str(s) for s in seeds)
        for stage in stages_of(spec) or [None]:
            if stage is None:
                lines.append(f"| {spec.row} | {shown} | (no training) | 0 | – | – |")
                continue
            epochs = stage.epochs if stage.epochs is not None else settings.epochs
            lines.append(f"| {spec.row} | {shown} | {stage.name} | {round(scale * len(stage.sequences)):,} | {epochs:g} | "
                         f"{tokens(stage):,} |")
        needs = REGISTRY[spec.name].needs_for(spec.params)
        for seed in seeds:
            use_seed = study.seeds[0] if seed is None else seed
            if "student_rationales" in needs or (spec.params.get("selection") or {}).get("scorer") == "warm":
                train_job(MethodConfig(name="std_cot"), use_seed)
            if "student_rationales" in needs:
                samples = int(spec.params.get("student_samples", 1))
                key = ("samples", samples, use_seed)
                jobs.setdefault(key, Job(generate_tokens=len(train) * samples
                                         * study.eval.max_new_tokens))
            if "selection" in needs:
                key = ("selection", json.dumps(spec.params.get("selection"), sort_keys=True, default=str), use_seed)
                scored = rationales + (student_samples if "student_rationales" in needs else [])
                jobs.setdefault(key, Job(score_tokens=round(2 * scale * sum(
                    len(tokenizer(r.text, add_special_tokens=False).input_ids) for r in scored if r.correct))))
            if REGISTRY[spec.name].trains:
                train_job(spec, use_seed)
            questions = sum(by_split[split] for split in splits.values())
            jobs[("eval", spec.row, seed)] = Job(generate_tokens=questions * gen)

    trainings = sum(1 for k in jobs if k[0] == "train")
    workers = study.workers or default_workers(trainings)
    totals = {k: sum(getattr(j, k) for j in jobs.values()) for k in ("train_tokens", "generate_tokens", "score_tokens")}
    parts = sum(1 for k in jobs if k[0] == "part")
    lines += ["", f"Trainings: {trainings} (methods x seeds, shared stages once) in {parts} training parts (rows that "
              f"begin alike share their first parts); evaluations: "
              f"{sum(1 for k in jobs if k[0] == 'eval')}, each on {sum(by_split[s] for s in splits.values()):,} "
              f"questions", "",
              f"Cost: {totals['train_tokens']:,} training tokens (epochs included), at most "
              f"{totals['generate_tokens']:,} generated tokens (max_new_tokens {study.eval.max_new_tokens} per "
              f"output), {totals['score_tokens']:,} scored tokens (MoRSD)"]
    for device, speed in SPEEDS.items():
        n = workers if device == "cpu" else 1
        seconds = (totals["train_tokens"] / speed.train + totals["generate_tokens"] / speed.generate
                   + totals["score_tokens"] / (3 * speed.train)) / n
        lines.append(f"Time on {device.upper()}: about {_duration(seconds)} with {n} worker(s) at "
                     f"{speed.train:g} training and {speed.generate:g} generated tokens/s each ({speed.source}); "
                     "generation is an upper bound")
    if study.student in SCRATCH_PRESETS:
        lines.append(f"(The speeds are SmolLM2-135M's: a {study.student} student is far faster, so these times are "
                     "far too high for it.)")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{max(1, round(seconds / 60))} min"
