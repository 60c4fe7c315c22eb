"""A comparison study: methods × seeds over shared stages, evaluated in and out of distribution, one report.

The flow, each step a hashed stage of the run folder (pipeline.RunFolder), so shared work is done once and an
interrupted study resumes:

    lab questions (train, IND test, OOD test) -> teacher CoTs and dual pairs
    per seed: a fresh student (fixed init for every method of that seed)
        per method: recipe -> training stages -> trained student -> IND and OOD predictions
    report: accuracy mean ± std over seeds, Δ to the baseline with a paired bootstrap interval, plot, HTML

A recipe declares the upstream stages it needs (methods.base.Need) and the study resolves them generically:
teacher CoTs and pairs come from the teacher's stage, student samples from the seed's Std-CoT student, a
selection from MoRSD's selection stage; so recipes combine parts without special cases here.

A validation split, carved (seeded, per task) from the training questions and never trained on, is where every
choice made from results is made (a stage's `select_epoch`); the test splits are only ever reported.

Each method × seed training runs in a single-thread worker process with deterministic algorithms, several at
once (one per core by default; rows that took longest in an earlier report of the run folder start first).
Stages they share are computed once (the run folder's per-stage lock), and so are training parts: rows whose
recipes begin with the same stage (EDIT and its stage-1 row, a stage-2 search) train it once and continue from its
saved model (run_stages). Nothing in results.json depends on timing, thread count or the run folder's location:
wall times go to timings.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .config import (DataConfig, EvalConfig, LabData, LabTeacher, LoraConfig, MethodConfig, RunConfig, StudyConfig,
                     ValidationConfig)
from .errors import CotdistillError
from .records import DualPair, Example, Rationale, atomic_write_text, read_jsonl, with_pair_sides, write_jsonl
from .runfolder import RunFolder, file_digest, fingerprint, log


# ---- shared stages ------------------------------------------------------------------------------------------


def lab_examples_stage(run: RunFolder, data: LabData) -> Path:
    """Train, validation, IND test and OOD test questions for every family (lab.generate.lab_examples)."""
    from collections import Counter

    from .lab.generate import lab_examples

    def work(folder: Path) -> None:
        examples = lab_examples(data)
        write_jsonl(folder / "examples.jsonl", examples)
        log("[examples] " + ", ".join(f"{n} {split}" for split, n in Counter(e.split for e in examples).items()))

    return run.stage("lab_examples", {"data": data.model_dump()}, work) / "examples.jsonl"


def validation_stage(run: RunFolder, examples_file: Path, validation: ValidationConfig | None) -> Path:
    """The examples with a seeded share of each task's training questions relabelled split "validation"
    (examples that already hold a validation split, such as the lab's `validation_n`, keep theirs)."""
    if validation is None:
        return examples_file

    def work(folder: Path) -> None:
        examples = read_jsonl(examples_file, Example)
        carved = with_validation_split(examples, validation)
        write_jsonl(folder / "examples.jsonl", carved)
        if carved == examples:  # the lab generated fresh validation questions
            log("[validation] the examples bring their own validation split; nothing carved from training")
        else:
            log(f"[validation] {sum(e.split == 'validation' for e in carved)} training questions set aside for "
                "validation")

    params = {"examples": file_digest(examples_file), "validation": validation.model_dump()}
    return run.stage("validation", params, work) / "examples.jsonl"


def with_validation_split(examples: list[Example], validation: ValidationConfig) -> list[Example]:
    """The examples with a seeded share of each task's training questions relabelled "validation"; unchanged
    when they already hold a validation split."""
    if any(e.split == "validation" for e in examples):
        return examples
    by_task: dict[str, list[str]] = defaultdict(list)
    for e in examples:
        if e.split == "train":
            by_task[e.task].append(e.id)
    held: set[str] = set()
    for task, ids in sorted(by_task.items()):
        n = round(validation.fraction * len(ids))
        n = min(n, validation.max_per_task) if validation.max_per_task is not None else n
        held.update(random.Random(f"{validation.seed}/{task}").sample(ids, n))
    return [e.model_copy(update={"split": "validation"}) if e.id in held else e for e in examples]


def lab_teacher_stage(run: RunFolder, teacher: LabTeacher, examples_file: Path) -> Path:
    """The scripted teacher's CoTs for the training questions, graded, and EDIT's dual pairs from them; the
    pairs' rectified and corrupted CoTs are rationales too (after the teacher's own)."""

    def work(folder: Path) -> None:
        train = [e for e in read_jsonl(examples_file, Example) if e.split == "train"]
        rationales, pairs = lab_teacher_outputs(teacher, train)
        write_jsonl(folder / "rationales.jsonl", rationales)
        write_jsonl(folder / "pairs.jsonl", pairs)
        own = [r for r in rationales if r.origin == "teacher"]
        wrong = sum(not r.correct for r in own)
        log(f"[teacher] {len(own)} CoTs ({wrong} wrong, {wrong / max(1, len(own)):.0%}), {len(pairs)} dual pairs")

    return run.stage("lab_teacher", {"teacher": teacher.model_dump(), "examples": file_digest(examples_file)}, work)


def lab_teacher_outputs(teacher: LabTeacher, train: list[Example]) -> tuple[list[Rationale], list[DualPair]]:
    """The scripted teacher's graded CoTs (then the pairs' rectified and corrupted ones) and the dual pairs."""
    from .lab.cli import _dual_pairs
    from .lab.teacher import ScriptedTeacher

    scripted = ScriptedTeacher.from_config(teacher)
    rationales = [r for rs in scripted.solve(train, n=teacher.samples) for r in rs]
    pairs = _dual_pairs(scripted, train, rationales)
    return with_pair_sides(rationales, pairs), pairs


def student_init_stage(run: RunFolder, student: str, seed: int, texts_from: list[Path]) -> Path:
    """The seed's starting student: a lab preset initialised from scratch (tokenizer fitted on the study's
    training text), or a pretrained model copied as is. Every method of a seed starts from these same weights."""
    from .lab.students import SCRATCH_PRESETS, build_student
    from .models import hf_copy_of

    if student not in SCRATCH_PRESETS:
        return Path(hf_copy_of(student))

    def work(folder: Path) -> None:
        train = [e for e in read_jsonl(texts_from[0], Example) if e.split == "train"]
        texts = [e.question for e in train]
        texts += [r.text for r in training_only(read_jsonl(texts_from[1], Rationale), train)]
        build_student(student, texts, seed, save_to=folder / "model")

    params = {"preset": student, "seed": seed, "texts": [file_digest(p) for p in texts_from]}
    return run.stage("student_init", params, work) / "model"


def training_only(records: Sequence[Any], train: Sequence[Example]) -> list[Any]:
    """The rationales or pairs of training questions: a teacher's CoTs for validation questions stay unseen."""
    ids = {e.id for e in train}
    return [r for r in records if r.example_id in ids]


# ---- per seed and method ------------------------------------------------------------------------------------


def _load(folder: Path):
    from .config import StudentConfig
    from .models import load_student

    model, tokenizer = load_student(StudentConfig(model=str(folder)))
    return model, tokenizer


def _model_key(run: RunFolder, folder: Path) -> str:
    """A model folder made in the run is named by its stage hash, so its path in the run identifies its content;
    the relative path keeps every hash (and results.json) independent of where the run folder lives."""
    try:
        return str(folder.resolve().relative_to(run.root.resolve()))
    except ValueError:
        return str(folder)


def student_rationales_stage(run: RunFolder, model_dir: Path, examples_file: Path, samples: int,
                             temperature: float, max_new_tokens: int, seed: int) -> Path:
    """Rationales sampled from a trained student on the training questions, graded (CoPeD's student side)."""
    from .generation import generate_texts
    from .grading import grade
    from .prompting import student_prompt

    model_key = _model_key(run, model_dir)

    def work(folder: Path) -> None:
        model, tokenizer = _load(model_dir)
        model.eval()
        train = [e for e in read_jsonl(examples_file, Example) if e.split == "train"]
        outputs = generate_texts(model, tokenizer, [student_prompt(e) for e in train], max_new_tokens=max_new_tokens,
                                 batch_size=64, num_samples=samples, temperature=temperature, seed=seed)
        rationales = []
        for example, gens in zip(train, outputs):
            for i, g in enumerate(gens):
                graded = grade(g.text, example)
                rationales.append(Rationale(id=f"{example.id}#student{i}", example_id=example.id, text=g.text.strip(),
                                            answer=graded.strict, correct=graded.strict_correct, origin="student",
                                            model=model_key, sample_index=i,
                                            truncated=g.finish_reason == "length"))
        write_jsonl(folder / "rationales.jsonl", rationales)
        right = sum(bool(r.correct) for r in rationales)
        log(f"[student_rationales] {len(rationales)} sampled, {right} correct")

    params = {"model": model_key, "examples": file_digest(examples_file), "samples": samples,
              "temperature": temperature, "max_new_tokens": max_new_tokens, "seed": seed}
    return run.stage("student_rationales", params, work) / "rationales.jsonl"


def selection_stage(run: RunFolder, scorer_dir: Path, examples_file: Path, rationales_files: list[Path],
                    selection: dict[str, Any]) -> Path:
    """MoRSD's selection: accuracy, diversity, then Rationale Difficulty measured by `scorer_dir`'s student, over
    the rationales of `rationales_files` (the teacher's; and the student's samples where `origins` names them)."""
    from .select import SelectionConfig, select_rationales

    config = SelectionConfig.from_params(selection)

    def work(folder: Path) -> None:
        model, tokenizer = _load(scorer_dir)
        model.eval()
        examples = [e for e in read_jsonl(examples_file, Example) if e.split == "train"]
        candidates = training_only([r for f in rationales_files for r in read_jsonl(f, Rationale)], examples)
        result = select_rationales(model, tokenizer, examples, candidates, config)
        write_jsonl(folder / "selected.jsonl", result.kept)
        result.write_table(folder / "scores.jsonl")
        log(f"[selection] kept {len(result.kept)} of {len(result.table)} rationales")

    digests = [file_digest(f) for f in rationales_files]
    params = {"scorer": _model_key(run, scorer_dir), "examples": file_digest(examples_file),
              "rationales": digests[0] if len(digests) == 1 else digests, "selection": config.model_dump()}
    return run.stage("selection", params, work) / "selected.jsonl"


@dataclass(frozen=True)
class Validation:
    """How a stage's epochs are scored: the first `max_eval` validation questions, under the method's prompt."""

    examples_file: Path
    config: ValidationConfig
    eval: EvalConfig
    seed: int
    spec: MethodConfig

    def questions(self) -> list[Example]:
        examples = [e for e in read_jsonl(self.examples_file, Example) if e.split == "validation"]
        examples = examples[:self.config.max_eval]
        if not examples:
            raise CotdistillError(f"method {self.spec.row!r}: select_epoch needs validation questions; "
                                  "study.validation leaves none")
        return examples

    def prompt(self, example: Example, tokenizer: Any) -> str:
        from .methods import eval_prompt

        return eval_prompt(self.spec.name, example, self.eval.prompt_style, tokenizer, self.spec.params)

    def identity(self, tokenizer: Any) -> dict[str, Any]:
        """What the scores depend on: the questions as prompted, their golds, decoding and seed (not the row's
        name, so rows that prompt alike share a selection)."""
        asked = [(self.prompt(e, tokenizer), e.model_dump_json()) for e in self.questions()]
        return {"questions": fingerprint(asked), "eval": self.eval.model_dump(), "seed": self.seed}

    def scorer(self, tokenizer: Any) -> Callable[[Any, Path], float]:
        """score(model, folder) -> strict validation accuracy; predictions go to `folder` (resumable)."""
        from .evaluate import evaluate

        examples = self.questions()

        def score(model: Any, folder: Path) -> float:
            if (folder / "metrics.json").exists():
                metrics = json.loads((folder / "metrics.json").read_text())
            else:
                model.eval()
                metrics = evaluate(model, tokenizer, examples, self.eval, folder, seed=self.seed,
                                   prompt_of=lambda e: self.prompt(e, tokenizer))
            right = sum(b["strict"] * b["n"] for b in metrics["benchmarks"].values())
            return right / sum(b["n"] for b in metrics["benchmarks"].values())

        return score


def train_stage(run: RunFolder, spec: MethodConfig, seed: int, init_dir: Path, inputs_files: dict[str, Path],
                train: dict[str, Any], validation: Validation | None = None) -> tuple[Path, dict[str, Any]]:
    """Compile the method's recipe and train it from the seed's initial student; returns the model folder and
    what the training recorded (train.json: sequences, seconds, stages, and the epochs chosen on validation)."""
    from .methods import REGISTRY, MethodInputs, recipe_params

    params = {"method": spec.name, "params": recipe_params(spec.params), "seed": seed,
              "init": _model_key(run, init_dir), "inputs": {k: file_digest(p) for k, p in sorted(inputs_files.items())},
              "train": train, "validation": validation.config.model_dump() if validation else None}

    def work(folder: Path) -> None:
        from .models import load_tokenizer

        tokenizer = load_tokenizer(str(init_dir))
        train_examples = [e for e in read_jsonl(inputs_files["examples"], Example) if e.split == "train"]

        def records(need: str, kind: type) -> list[Any]:
            return training_only(read_jsonl(inputs_files[need], kind), train_examples) if need in inputs_files else []

        inputs = MethodInputs(examples=train_examples, rationales=records("rationales", Rationale),
                              pairs=records("pairs", DualPair),
                              student_rationales=records("student_rationales", Rationale),
                              selected=records("selection", Rationale) if "selection" in inputs_files else None,
                              tokenizer=tokenizer)
        stages = REGISTRY[spec.name].build(inputs, recipe_params(spec.params))
        score = validation.scorer(tokenizer) if validation else None

        def part_folder(start: Path, part: list[Any], work_part: Callable[[Path], None]) -> Path:
            selects = any(stage.extra.get("select_epoch") for stage in part)
            key = {"from": _model_key(run, start), "stages": [stage_fingerprint(stage) for stage in part],
                   "train": train, "seed": seed,
                   "validation": validation.identity(tokenizer) if selects and validation else None}
            return run.stage("train-part", key, work_part)

        final, selected, seconds = run_stages(init_dir, tokenizer, stages, train_settings(train, seed),
                                              folder / "run", score, part_folder)
        # the model lives in a shared part's folder: named relative to this one, so the run folder can move
        info = {"model": os.path.relpath(final, folder), "sequences": sum(len(s.sequences) for s in stages),
                "seconds": seconds, "selected": selected,
                "stages": [{"name": s.name, "sequences": len(s.sequences)} for s in stages]}
        atomic_write_text(folder / "train.json", json.dumps(info, indent=2))

    folder = run.stage(f"train-{spec.name}", params, work)
    info = json.loads((folder / "train.json").read_text())
    return Path(os.path.normpath(folder / info["model"])), info


def train_settings(train: dict[str, Any], seed: int) -> Any:
    """The study's `train` section as the trainer's TrainSettings for one seed (a LoRA given as a mapping made a
    LoraConfig)."""
    from .train.trainer import TrainSettings

    lora = train.get("lora")
    return TrainSettings(**{**train, "seed": seed, "lora": LoraConfig(**lora) if isinstance(lora, dict) else lora})


def stage_fingerprint(stage: Any) -> str:
    """A hash of everything a TrainingStage trains with: its schedule, its extras and every sequence."""
    digest = hashlib.sha256()
    for sequence in stage.sequences:
        digest.update(sequence.model_dump_json().encode())
        digest.update(b"\n")
    fields = {k: v for k, v in vars(stage).items() if k != "sequences"}
    return fingerprint({**fields, "sequences": digest.hexdigest()})


PartCache = Callable[[Path, list[Any], Callable[[Path], None]], Path]


def run_stages(init_dir: Path, tokenizer: Any, stages: list[Any], settings: Any, out: Path,
               score: Callable[[Any, Path], float] | None = None,
               cache: PartCache | None = None) -> tuple[Path, list[dict[str, Any]], float]:
    """Weighted-trainer stages in parts, with a DPO stage (TRL's trainer) where a recipe asks for one and a stage
    of its own where a recipe asks to select its epoch (`select_epoch`, scored by `score` on validation); each
    part starts from the model the previous one left, in its folder's `model`.

    `cache(from_dir, part_stages, work)` gives a part's folder, running `work(folder)` unless it is done: the
    study's run folder, keyed by what the part trains from and on, so rows that share a first stage (EDIT and
    its stage-1 row; a stage-2 search) train it once. A part ends where the next stage can start from saved
    weights (training_parts): the saved model is the merged one it would have started from in memory. Without a
    cache, parts go to out/part0, out/part1...
    Returns the final model folder, the epochs selected, and the seconds the parts took when they were trained
    (a part found done counts what it cost then, so a row's time does not depend on which row ran first)."""
    current, selected, seconds = init_dir, [], 0.0
    for n, part in enumerate(training_parts(stages, settings)):
        def work(folder: Path, part: list[Any] = part, start: Path = current) -> None:
            began = time.perf_counter()
            record = _train_part(start, tokenizer, part, settings, folder, score)
            atomic_write_text(folder / "part.json", json.dumps({"seconds": time.perf_counter() - began,
                                                                 "selected": record}, indent=2))

        if cache is not None:
            folder = cache(current, part, work)
        else:
            folder = out / f"part{n}"
            if not (folder / "part.json").exists():
                work(folder)
        info = json.loads((folder / "part.json").read_text())
        current, seconds = folder / "model", seconds + info["seconds"]
        if info["selected"]:
            selected.append(info["selected"])
    return current, selected, seconds


def training_parts(stages: list[Any], settings: Any) -> list[list[Any]]:
    """The stages grouped into parts that each start from a saved model: a stage joins the part before it only
    where it goes on training that part's LoRA adapter (which lives in memory, not in the saved merged model);
    a DPO or select_epoch stage is always a part of its own."""
    from .train.trainer import stage_lora

    parts: list[list[Any]] = []
    for stage in stages:
        before = parts[-1][-1] if parts else None
        continues_adapter = (before is not None and not _alone(before) and not _alone(stage)
                             and stage_lora(before, settings) is not None and stage_lora(stage, settings) is not None
                             and not stage.merge_lora_before)
        if continues_adapter:
            parts[-1].append(stage)
        else:
            parts.append([stage])
    return parts


def _alone(stage: Any) -> bool:
    return stage.extra.get("trainer") == "dpo" or bool(stage.extra.get("select_epoch"))


def _train_part(start: Path, tokenizer: Any, part: list[Any], settings: Any, folder: Path,
                score: Callable[[Any, Path], float] | None) -> dict[str, Any] | None:
    """Train one part from `start` into folder/model; the epoch selection's record where it selects one."""
    from .methods.dpo import DPOSettings, train_dpo
    from .train.trainer import train_stages

    stage = part[0]
    if not _alone(stage):
        train_stages(str(start), tokenizer, part, settings, folder / "model")
        return None
    if stage.extra.get("trainer") == "dpo":
        dpo = DPOSettings(beta=stage.extra["beta"], seed=settings.seed, **stage.extra["settings"])
        train_dpo(str(start), tokenizer, stage.extra["rows"], dpo, folder / "model")
        return None
    if score is None:
        raise CotdistillError(f"stage {stage.name!r} asks for select_epoch, which needs study.validation")
    per_epoch = replace(settings, training_args={**settings.training_args, "save_strategy": "epoch",
                                                 "save_total_limit": None})
    train_stages(str(start), tokenizer, [stage], per_epoch, folder / "epochs")
    return select_epoch(folder / "epochs", stage.name, start, tokenizer, score, folder / "model")


def select_epoch(part_dir: Path, stage_name: str, base_dir: Path, tokenizer: Any,
                 score: Callable[[Any, Path], float], chosen: Path) -> dict[str, Any]:
    """Save the epoch checkpoint of a trained stage that scores best on validation (the earliest of equals) with
    the tokenizer as the model folder `chosen`; return a record of every candidate's score."""
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    if (chosen / "selection.json").exists():
        return json.loads((chosen / "selection.json").read_text())
    checkpoints = sorted((part_dir / "stages").glob(f"*-{stage_name}/checkpoints/{PREFIX_CHECKPOINT_DIR}-*"),
                         key=lambda p: int(p.name.rsplit("-", 1)[1]))
    if not checkpoints:
        raise CotdistillError(f"{part_dir}: stage {stage_name!r} saved no epoch checkpoint to select from")
    candidates = []
    for checkpoint in checkpoints:
        model = _checkpoint_model(checkpoint, base_dir)
        epoch = json.loads((checkpoint / "trainer_state.json").read_text())["epoch"]
        candidates.append({"epoch": round(epoch, 4), "validation_strict": score(model, part_dir / "validation" / checkpoint.name)})
    best = max(range(len(candidates)), key=lambda i: (candidates[i]["validation_strict"], -i))
    model = _checkpoint_model(checkpoints[best], base_dir)
    staging = chosen.with_name(chosen.name + ".partial")
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    record = {"stage": stage_name, "by": "validation strict accuracy", **candidates[best], "candidates": candidates}
    atomic_write_text(staging / "selection.json", json.dumps(record, indent=2))
    if chosen.exists():
        import shutil

        shutil.rmtree(chosen)
    os.replace(staging, chosen)
    return record


def _checkpoint_model(checkpoint: Path, base_dir: Path) -> Any:
    """The full model a Trainer checkpoint holds: its weights, or its LoRA folded into the stage's base."""
    from .train.trainer import _load as load_weights

    if (checkpoint / "adapter_config.json").exists():
        from peft import PeftModel

        return PeftModel.from_pretrained(load_weights(base_dir), checkpoint).merge_and_unload()
    return load_weights(checkpoint)


def eval_split_stage(run: RunFolder, model_dir: Path, examples_file: Path, split: str, eval_cfg: EvalConfig,
                     seed: int, spec: MethodConfig) -> Path:
    """Predictions of a trained student on one split (strict and flexible grading), under the prompt its
    method trained it with."""
    from .evaluate import evaluate
    from .methods import eval_prompt

    def work(folder: Path) -> None:
        model, tokenizer = _load(model_dir)
        model.eval()
        examples = [e for e in read_jsonl(examples_file, Example) if e.split == split]
        evaluate(model, tokenizer, examples, eval_cfg, folder, seed=seed,
                 prompt_of=lambda e: eval_prompt(spec.name, e, eval_cfg.prompt_style, tokenizer, spec.params))

    params = {"model": _model_key(run, model_dir), "examples": file_digest(examples_file), "split": split,
              "eval": eval_cfg.model_dump(), "seed": seed, "method": spec.name, "params": spec.params}
    return run.stage("eval", params, work) / "predictions.jsonl"


def teacher_predictions_stage(run: RunFolder, teacher: LabTeacher, examples_file: Path, split: str) -> Path:
    """The scripted teacher answering the test questions, graded like a student: the report's teacher row."""
    from .evaluate import score
    from .generation import Generated
    from .lab.teacher import ScriptedTeacher

    def work(folder: Path) -> None:
        examples = [e for e in read_jsonl(examples_file, Example) if e.split == split]
        scripted = ScriptedTeacher.from_config(teacher)
        rows = [score(e, [Generated(r[0].text, "stop", 0)]) for e, r in zip(examples, scripted.solve(examples))]
        write_jsonl(folder / "predictions.jsonl", rows)

    params = {"teacher": teacher.model_dump(), "examples": file_digest(examples_file), "split": split}
    return run.stage("teacher_eval", params, work) / "predictions.jsonl"


def teacher_answers_stage(run: RunFolder, answers_file: Path, examples_file: Path, split: str) -> Path | None:
    """The teacher's answers from a `cotdistill teach --test-split` run, scored like a student's predictions, for
    the report's teacher row; None (with the reason logged) when they do not cover every question of `split`."""
    from .evaluate import score
    from .generation import Generated

    examples = [e for e in read_jsonl(examples_file, Example) if e.split == split]
    answers = {r.example_id: r for r in read_jsonl(answers_file, Rationale)}
    missing = [e.id for e in examples if e.id not in answers]
    if missing:
        log(f"[teacher] no teacher row: {answers_file} answers {len(examples) - len(missing)} of the {len(examples)} "
            f"{split} questions (first missing: {missing[0]}); rerun `cotdistill teach` with --test-split {split} "
            "and the study's data settings")
        return None

    def work(folder: Path) -> None:
        rows = [score(e, [Generated(answers[e.id].text, "length" if answers[e.id].truncated else "stop", 0)])
                for e in examples]
        write_jsonl(folder / "predictions.jsonl", rows)

    params = {"answers": file_digest(answers_file), "examples": file_digest(examples_file), "split": split}
    return run.stage("teacher_eval", params, work) / "predictions.jsonl"



OOD_SPLIT = "ood/"  # + the benchmark's column name: the split of each OOD benchmark's questions


def data_examples_stage(run: RunFolder, data: DataConfig, ood_data: DataConfig | list[DataConfig] | None) -> Path:
    """Examples from the run's data section (every split) and, from each `ood_data` benchmark, its questions
    with split "ood/<column>": the section's `label`, else the benchmark's name (BB-sub, AGIEval, ARC-E, ...)."""

    def work(folder: Path) -> None:
        write_jsonl(folder / "examples.jsonl", study_examples(data, ood_data))

    ood = ood_data if isinstance(ood_data, list) else [ood_data] if ood_data else []
    params = {"data": data.model_dump(), "ood": [d.model_dump() for d in ood] if isinstance(ood_data, list)
              else ood_data.model_dump() if ood_data else None}
    return run.stage("examples", params, work) / "examples.jsonl"


def study_examples(data: DataConfig, ood_data: DataConfig | list[DataConfig] | None) -> list[Example]:
    """Every split of `data`, then each `ood_data` benchmark's questions with split "ood/<column>"."""
    from .data import benchmark_label, benchmark_of, load_examples

    examples = load_examples(data.model_copy(update={"split": None}))
    for section in ood_data if isinstance(ood_data, list) else [ood_data] if ood_data else []:
        examples += [e.model_copy(update={"split": OOD_SPLIT + (section.label or benchmark_label(benchmark_of(e)))})
                     for e in load_examples(section)]
    return examples


def ood_splits(examples_file: Path | list[Example]) -> dict[str, str]:
    """Report column ("OOD <benchmark>") -> examples split, for every OOD benchmark in the examples (or file)."""
    from .report import OOD_PREFIX

    examples = read_jsonl(examples_file, Example) if isinstance(examples_file, Path) else examples_file
    found = dict.fromkeys(e.split for e in examples if e.split.startswith(OOD_SPLIT))
    return {OOD_PREFIX + split[len(OOD_SPLIT):]: split for split in found}


# ---- one method × seed: its needs resolved into files, trained, evaluated ------------------------------------

@dataclass(frozen=True)
class Shared:
    """What every job reads, made before any job runs: the run folder, examples, the teacher's outputs."""

    run_dir: Path
    study: StudyConfig
    examples: Path
    rationales: Path
    pairs: Path | None
    splits: dict[str, str]


def resolve_needs(run: RunFolder, shared: Shared, spec: MethodConfig, seed: int,
                  init_dir: Path) -> dict[str, Path]:
    """The files of the upstream stages the method's recipe declares it needs (methods.base.Need)."""
    from .methods import REGISTRY

    study = shared.study
    files = {"examples": shared.examples, "rationales": shared.rationales}
    if shared.pairs is not None:
        files["pairs"] = shared.pairs
    needs = REGISTRY[spec.name].needs_for(spec.params)
    if "pairs" in needs and shared.pairs is None:
        raise CotdistillError(f"method {spec.row!r} needs dual pairs; the teacher's outputs hold no pairs.jsonl")
    teacher_files = dict(files)
    warm: Path | None = None

    def warm_student() -> Path:  # the seed's Std-CoT student: the same stage as the study's own std_cot row
        nonlocal warm
        if warm is None:
            std_cot = MethodConfig(name="std_cot")
            warm, _ = train_stage(run, std_cot, seed, init_dir, teacher_files, study.train,
                                  validation_for(shared, std_cot, seed))
        return warm

    if "student_rationales" in needs:
        files["student_rationales"] = student_rationales_stage(
            run, warm_student(), shared.examples, int(spec.params.get("student_samples", 1)),
            float(spec.params.get("student_temperature", 0.7)), study.eval.max_new_tokens, seed)
    if "selection" in needs:
        selection = {"seed": seed, **(spec.params.get("selection") or {})}  # each seed draws its own random control
        scorer = warm_student() if selection.get("scorer") == "warm" else init_dir
        candidates = [shared.rationales, *([files["student_rationales"]] if "student_rationales" in files else [])]
        files["selection"] = selection_stage(run, scorer, shared.examples, candidates, selection)
    return files


VALIDATION = "validation"  # the split label of validation results (study.report_validation): validation.json only


def validation_for(shared: Shared, spec: MethodConfig, seed: int) -> Validation | None:
    study = shared.study
    return Validation(shared.examples, study.validation, study.eval, seed, spec) if study.validation else None


def run_job(shared: Shared, spec: MethodConfig, seed: int | None) -> list[Any]:
    """Train one method with one seed (its needs first) and evaluate it on every split: its RunResults. A method
    that does not train (zero_shot) evaluates the seed's initial student; seed None: a seedless row (job_seeds)."""
    from .methods import REGISTRY
    from .report import RunResult

    study = shared.study
    run = RunFolder(shared.run_dir)
    use_seed = study.seeds[0] if seed is None else seed  # a seedless row's student and greedy decoding ignore it
    init_dir = student_init_stage(run, study.student, use_seed, [shared.examples, shared.rationales])
    if REGISTRY[spec.name].trains:
        files = resolve_needs(run, shared, spec, use_seed, init_dir)
        model_dir, info = train_stage(run, spec, use_seed, init_dir, files, study.train,
                                      validation_for(shared, spec, use_seed))
    else:
        model_dir, info = init_dir, {"sequences": 0, "seconds": None}
    selected = {"epochs": info["selected"]} if info.get("selected") else None
    splits = {**shared.splits, **({VALIDATION: "validation"} if study.report_validation else {})}
    return [RunResult(spec.row, seed, label, eval_split_stage(run, model_dir, shared.examples, split, study.eval,
                                                             use_seed, spec),
                      info["sequences"], info["seconds"], selected=selected)
            for label, split in splits.items()]


def job_seeds(study: StudyConfig, spec: MethodConfig) -> list[int | None]:
    """The seeds a method runs with: the study's (or the method's own `seeds`, a subset), except that a method
    that does not train on a pretrained student (the same weights for every seed) runs once, seedless."""
    from .lab.students import SCRATCH_PRESETS
    from .methods import REGISTRY

    if REGISTRY[spec.name].trains or study.student in SCRATCH_PRESETS:
        return list(study.seeds) if spec.seeds is None else [s for s in study.seeds if s in spec.seeds]
    return [None]


# ---- workers ---------------------------------------------------------------------------------------------------


def default_workers(jobs: int) -> int:
    """One worker per core the process may use (at most one per job); one on an accelerator, which parallel
    trainings would contend for (each worker still runs one thread there)."""
    import torch

    if torch.cuda.is_available():
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(jobs, cores))


def pin_worker() -> None:
    """One thread and deterministic kernels: a job's results must not depend on the machine's thread count."""
    import torch

    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it for deterministic matmuls
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already fixed once inter-op work ran in this process
        pass
    torch.use_deterministic_algorithms(True)


@contextmanager
def pinned_here() -> Iterator[None]:
    """pin_worker for the calling process while the block runs, then the caller's settings back."""
    import torch

    saved_env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TOKENIZERS_PARALLELISM",
                                                 "CUBLAS_WORKSPACE_CONFIG")}
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    pin_worker()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def earlier_train_seconds(run_root: Path) -> dict[str, float]:
    """Each row's mean training time over the timings.json of every earlier report in the run folder (a study
    run in parts, or rerun with more seeds): what `longest_first` orders by."""
    seconds: dict[str, list[float]] = defaultdict(list)
    for path in sorted(run_root.glob("*/timings.json")):
        try:
            runs = json.loads(path.read_text())["runs"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a timing file only guides the order; a broken one is no error
        for r in runs:
            if isinstance(r, dict) and isinstance(r.get("train_seconds"), (int, float)):
                seconds[str(r.get("method"))].append(float(r["train_seconds"]))
    return {row: sum(v) / len(v) for row, v in seconds.items()}


def longest_first(jobs: list[tuple[MethodConfig, int | None]], seconds: dict[str, float]) -> list[int]:
    """The order to start jobs in: the rows that took longest before go first (rows never timed count as longest),
    ties in config order; so a long job (DPO, a multi-stage recipe) does not start last and leave a worker idle
    while it runs alone. With no timings, config order."""
    return sorted(range(len(jobs)), key=lambda i: -seconds.get(jobs[i][0].row, float("inf")))


def run_jobs(shared: Shared, jobs: list[tuple[MethodConfig, int | None]], workers: int) -> list[list[Any]]:
    """Every job's RunResults, in job order; `workers` > 1 runs them in that many spawned worker processes,
    started in `longest_first` order."""
    if workers <= 1:
        with pinned_here():
            return [run_job(shared, spec, seed) for spec, seed in jobs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    seconds = earlier_train_seconds(shared.run_dir)
    order = longest_first(jobs, seconds)
    log(f"[study] {len(jobs)} trainings on {workers} single-thread workers"
        + (f", the longest first by earlier timings of {len(seconds)} rows" if seconds else ""))
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=pin_worker) as pool:
        futures = {i: pool.submit(run_job, shared, *jobs[i]) for i in order}
        try:
            return [futures[i].result() for i in range(len(jobs))]
        except BaseException:
            pool.shutdown(cancel_futures=True)  # a failed job stops the study: start no further job
            raise


# ---- the study ----------------------------------------------------------------------------------------------


def check_methods(study: StudyConfig) -> None:
    """Unknown methods and needs fail before anything runs."""
    from .methods import REGISTRY

    labels = [m.row for m in study.methods]
    if len(set(labels)) != len(labels):
        raise CotdistillError("two methods share a report row; give one a distinct `label`")
    for spec in study.methods:
        if spec.name not in REGISTRY:
            raise CotdistillError(f"unknown method {spec.name!r}; known: {', '.join(sorted(REGISTRY))}")
        REGISTRY[spec.name].needs_for(spec.params)
        if spec.seeds is not None and not set(spec.seeds) <= set(study.seeds):
            raise CotdistillError(f"method {spec.row!r}: seeds {spec.seeds} must be among study.seeds {study.seeds}")
    unknown = sorted(set(study.rows or []) - set(labels))
    if unknown:
        raise CotdistillError(f"study.rows names {unknown}, not rows of study.methods; rows: {', '.join(labels)}")


def rows_to_run(study: StudyConfig) -> list[MethodConfig]:
    """study.methods, narrowed to study.rows when given."""
    return [spec for spec in study.methods if study.rows is None or spec.row in study.rows]


def prepare(cfg: RunConfig, run: RunFolder) -> Shared:
    """The stages every job shares: examples (with the validation split carved out) and the teacher's outputs."""
    study = cfg.study
    assert study is not None
    if study.lab is not None:
        from .lab.generate import evaluation_splits

        examples_file = validation_stage(run, lab_examples_stage(run, study.lab), study.validation)
        teacher_dir = lab_teacher_stage(run, study.teacher, examples_file)
        splits = evaluation_splits(study.lab)
    else:
        if not study.teacher_outputs or not (Path(study.teacher_outputs) / "rationales.jsonl").is_file():
            raise CotdistillError("study.teacher_outputs must name a `cotdistill teach` folder with rationales.jsonl "
                                  "when study.lab is null")
        if isinstance(cfg.data, list):
            raise CotdistillError("a study trains on one data section; list several benchmarks in study.ood_data")
        examples_file = validation_stage(run, data_examples_stage(run, cfg.data, study.ood_data), study.validation)
        teacher_dir = Path(study.teacher_outputs)
        # IND, then one column per OOD benchmark (ood_splits)
        splits = {"IND": "test", **ood_splits(examples_file)}
    pairs = teacher_dir / "pairs.jsonl"
    return Shared(run.root, study, examples_file, teacher_dir / "rationales.jsonl", pairs if pairs.is_file() else None,
                  splits)


def run_study(cfg: RunConfig) -> Any:
    """Every method × seed, shared stages computed once; writes results.json (and timings.json) and report/ in
    the run folder."""
    from .environment import describe
    from .report import MANIFEST_NAME, RunResult, write_manifest, write_report

    study = cfg.study
    assert study is not None
    check_methods(study)
    if study.report_validation and study.validation is None:
        raise CotdistillError("study.report_validation needs a validation split: set study.validation")
    run = RunFolder(cfg.run_dir)
    shared = prepare(cfg, run)
    methods = rows_to_run(study)
    jobs = [(spec, seed) for seed in study.seeds for spec in methods if seed in job_seeds(study, spec)]
    jobs += [(spec, None) for spec in methods if job_seeds(study, spec) == [None]]
    workers = study.workers or default_workers(len(jobs))
    results: list[RunResult] = [r for job in run_jobs(shared, jobs, workers) for r in job]
    out = run.root / study.report
    validation = [replace(r, wall_time_s=None) for r in results if r.split == VALIDATION]
    if validation:  # kept apart, so no report column and no test-split choice ever reads them
        from .choose import VALIDATION_MANIFEST

        write_manifest(out / VALIDATION_MANIFEST, validation, baseline=study.baseline,
                       title="validation accuracy (for choosing; never reported as a result)")
        results = [r for r in results if r.split != VALIDATION]
    if study.lab is not None:  # the scripted teacher can answer the test questions too: the report's teacher row
        for label, split in shared.splits.items():
            results.append(RunResult("teacher", None, label,
                                     teacher_predictions_stage(run, study.teacher, shared.examples, split)))
    elif (Path(study.teacher_outputs) / "test_rationales.jsonl").is_file():  # `cotdistill teach --test-split`: IND
        answered = teacher_answers_stage(run, Path(study.teacher_outputs) / "test_rationales.jsonl", shared.examples,
                                         shared.splits["IND"])
        if answered is not None:
            results.append(RunResult("teacher", None, "IND", answered))
    else:
        log(f"[teacher] no teacher row: {study.teacher_outputs} has no test_rationales.jsonl (the teacher never "
            "answered the test questions; run `cotdistill teach ... --test-split test` to add them)")
    with pinned_here():  # the workers' settings (one thread, deterministic kernels), not this process's own
        environment = describe()  # versions and processor belong to the result: they move the numbers
    # results.json holds only what the same config always yields; wall times vary run to run, so apart
    write_manifest(out / MANIFEST_NAME, [replace(r, wall_time_s=None) for r in results], baseline=study.baseline,
                   environment=environment)
    timings = [{"method": r.method, "seed": r.seed, "train_seconds": r.wall_time_s}
               for r in results if r.wall_time_s is not None and r.split == next(iter(shared.splits))]
    atomic_write_text(out / "timings.json", json.dumps({"workers": workers, "runs": timings}, indent=2) + "\n")
    comparison, _ = write_report(results, out, baseline=study.baseline, environments=[environment])
    print(comparison.to_markdown())
    return comparison
