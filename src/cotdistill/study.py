"""A comparison study: methods × seeds over shared stages, evaluated in and out of distribution, one report.

The flow, each step a hashed stage of the run folder (pipeline.RunFolder), so shared work is done once and an
interrupted study resumes:

    lab questions (train, IND test, OOD test) -> teacher CoTs and dual pairs
    per seed: a fresh student (fixed init for every method of that seed)
        per method: recipe -> training stages -> trained student -> IND and OOD predictions
    report: accuracy mean ± std over seeds, Δ to the baseline with a paired bootstrap interval, plot, HTML

Methods that need the student's own view of the data get it from stages of their own: CoPeD samples
rationales from the seed's Std-CoT student; MoRSD scores the teacher's candidates with the student.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .config import DataConfig, EvalConfig, LabData, LoraConfig, LabTeacher, MethodConfig, RunConfig, StudyConfig
from .errors import CotdistillError
from .pipeline import RunFolder, file_digest, fingerprint, log
from .records import DualPair, Example, Rationale, read_jsonl, write_jsonl


# ---- shared stages ------------------------------------------------------------------------------------------


def lab_examples_stage(run: RunFolder, data: LabData) -> Path:
    """Train, IND test and OOD test questions for every family (OOD: the family's hard difficulty)."""
    from .lab.families import get_family
    from .lab.generate import generate_examples

    def work(folder: Path) -> None:
        examples: list[Example] = []
        for family in data.families:
            knobs = data.difficulty.get(family, {})
            train = generate_examples(family, data.train_n, data.seed, knobs, split="train")
            seen = [e.question for e in train]
            test = generate_examples(family, data.test_n, data.seed + 1, knobs, split="test", exclude=seen)
            examples += train + test
            if data.ood:
                hard = data.ood_difficulty.get(family) or dict(get_family(family).hard_difficulty)
                examples += generate_examples(family, data.test_n, data.seed + 2, hard, split="ood",
                                              exclude=seen + [e.question for e in test], id_prefix="lab-ood")
        write_jsonl(folder / "examples.jsonl", examples)
        log(f"[examples] {sum(e.split == 'train' for e in examples)} train, "
            f"{sum(e.split == 'test' for e in examples)} IND test, {sum(e.split == 'ood' for e in examples)} OOD test")

    return run.stage("lab_examples", {"data": data.model_dump()}, work) / "examples.jsonl"


def lab_teacher_stage(run: RunFolder, teacher: LabTeacher, examples_file: Path) -> Path:
    """The scripted teacher's CoTs for the training questions, graded, and EDIT's dual pairs from them."""
    from .lab.cli import _dual_pairs
    from .lab.teacher import ScriptedTeacher

    def work(folder: Path) -> None:
        train = [e for e in read_jsonl(examples_file, Example) if e.split == "train"]
        scripted = ScriptedTeacher(teacher.mistake_rate, teacher.spurious_rate, teacher.mistake_types, teacher.seed)
        rationales = [r for rs in scripted.solve(train, n=teacher.samples) for r in rs]
        pairs = _dual_pairs(scripted, train, rationales)
        write_jsonl(folder / "rationales.jsonl", rationales)
        write_jsonl(folder / "pairs.jsonl", pairs)
        wrong = sum(not r.correct for r in rationales)
        log(f"[teacher] {len(rationales)} CoTs ({wrong} wrong, {wrong / max(1, len(rationales)):.0%}), "
            f"{len(pairs)} dual pairs")

    return run.stage("lab_teacher", {"teacher": teacher.model_dump(), "examples": file_digest(examples_file)}, work)


def student_init_stage(run: RunFolder, student: str, seed: int, texts_from: list[Path]) -> Path:
    """The seed's starting student: a lab preset initialised from scratch (tokenizer fitted on the study's
    text), or a pretrained model copied as is. Every method of a seed starts from these same weights."""
    from .lab.students import SCRATCH_PRESETS, build_student
    from .models import hf_copy_of

    if student not in SCRATCH_PRESETS:
        return Path(hf_copy_of(student))

    def work(folder: Path) -> None:
        texts = [e.question for e in read_jsonl(texts_from[0], Example) if e.split == "train"]
        texts += [r.text for r in read_jsonl(texts_from[1], Rationale)]
        build_student(student, texts, seed, save_to=folder / "model")

    params = {"preset": student, "seed": seed, "texts": [file_digest(p) for p in texts_from]}
    return run.stage("student_init", params, work) / "model"


# ---- per seed and method ------------------------------------------------------------------------------------


def _load(folder: Path):
    from .config import StudentConfig
    from .models import load_student

    model, tokenizer = load_student(StudentConfig(model=str(folder)))
    return model, tokenizer


def student_rationales_stage(run: RunFolder, model_dir: Path, examples_file: Path, samples: int,
                             temperature: float, max_new_tokens: int, seed: int) -> Path:
    """Rationales sampled from a trained student on the training questions, graded (CoPeD's student side)."""
    from .generation import generate_texts
    from .grading import grade
    from .prompting import student_prompt

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
                                            model=str(model_dir), sample_index=i,
                                            truncated=g.finish_reason == "length"))
        write_jsonl(folder / "rationales.jsonl", rationales)
        right = sum(bool(r.correct) for r in rationales)
        log(f"[student_rationales] {len(rationales)} sampled, {right} correct")

    params = {"model": fingerprint(_model_key(model_dir)), "examples": file_digest(examples_file), "samples": samples,
              "temperature": temperature, "max_new_tokens": max_new_tokens, "seed": seed}
    return run.stage("student_rationales", params, work) / "rationales.jsonl"


def _model_key(folder: Path) -> str:
    """A trained model folder is named by its stage hash, so its path identifies its content."""
    return str(folder.resolve())


def selection_stage(run: RunFolder, scorer_dir: Path, examples_file: Path, rationales_file: Path,
                    selection: dict[str, Any]) -> Path:
    """MoRSD's selection: accuracy, diversity, then Rationale Difficulty measured by `scorer_dir`'s student."""
    from .select import SelectionConfig, select_rationales

    config = SelectionConfig.from_params(selection)

    def work(folder: Path) -> None:
        model, tokenizer = _load(scorer_dir)
        model.eval()
        examples = [e for e in read_jsonl(examples_file, Example) if e.split == "train"]
        result = select_rationales(model, tokenizer, examples, read_jsonl(rationales_file, Rationale), config)
        write_jsonl(folder / "selected.jsonl", result.kept)
        result.write_table(folder / "scores.jsonl")
        log(f"[selection] kept {len(result.kept)} of {len(result.table)} rationales")

    params = {"scorer": _model_key(scorer_dir), "examples": file_digest(examples_file),
              "rationales": file_digest(rationales_file), "selection": config.model_dump()}
    return run.stage("selection", params, work) / "selected.jsonl"


def train_stage(run: RunFolder, spec: MethodConfig, seed: int, init_dir: Path, inputs_files: dict[str, Path],
                train: dict[str, Any]) -> tuple[Path, int, float]:
    """Compile the method's recipe and train it from the seed's initial student; returns the model folder,
    the number of training sequences and the training time (read back from the finished stage)."""
    from .methods import REGISTRY, MethodInputs
    from .train.trainer import TrainSettings

    if spec.name not in REGISTRY:
        raise CotdistillError(f"unknown method {spec.name!r}; known: {', '.join(sorted(REGISTRY))}")
    params = {"method": spec.name, "params": spec.params, "seed": seed, "init": _model_key(init_dir),
              "inputs": {k: file_digest(p) for k, p in sorted(inputs_files.items())}, "train": train}

    def work(folder: Path) -> None:
        from .models import load_tokenizer

        tokenizer = load_tokenizer(str(init_dir))
        examples = read_jsonl(inputs_files["examples"], Example)
        inputs = MethodInputs(
            examples=[e for e in examples if e.split == "train"],
            rationales=read_jsonl(inputs_files["rationales"], Rationale),
            pairs=read_jsonl(inputs_files["pairs"], DualPair) if "pairs" in inputs_files else (),
            student_rationales=(read_jsonl(inputs_files["student_rationales"], Rationale)
                                if "student_rationales" in inputs_files else ()),
            tokenizer=tokenizer,
        )
        stages = REGISTRY[spec.name].build(inputs, spec.params)
        started = time.perf_counter()
        settings = {**train, "seed": seed}
        if isinstance(settings.get("lora"), dict):
            settings["lora"] = LoraConfig(**settings["lora"])
        final = run_stages(init_dir, tokenizer, stages, TrainSettings(**settings), folder / "run")
        info = {"model": str(final.relative_to(folder)), "sequences": sum(len(s.sequences) for s in stages), "seconds": time.perf_counter() - started,
                "stages": [{"name": s.name, "sequences": len(s.sequences)} for s in stages]}
        (folder / "train.json").write_text(json.dumps(info, indent=2))

    folder = run.stage(f"train-{spec.name}", params, work)
    info = json.loads((folder / "train.json").read_text())
    return folder / info["model"], info["sequences"], info["seconds"]


def run_stages(init_dir: Path, tokenizer: Any, stages: list[Any], settings: Any, out: Path) -> Path:
    """Weighted-trainer stages in runs, with a DPO stage (TRL's trainer) where a recipe asks for one;
    each run starts from the model the previous one saved. Returns the final model folder."""
    from .methods.dpo import DPOSettings, train_dpo
    from .train.trainer import train_stages

    current, pending, part = init_dir, [], 0
    for stage in [*stages, None]:
        if stage is not None and stage.extra.get("trainer") != "dpo":
            pending.append(stage)
            continue
        if pending:
            current = train_stages(str(current), tokenizer, pending, settings, out / f"part{part}")
            pending, part = [], part + 1
        if stage is not None:
            target = out / f"part{part}-dpo"
            if not (target / "config.json").exists():
                dpo = DPOSettings(beta=stage.extra.get("beta", 0.1), seed=settings.seed,
                                  **stage.extra.get("settings", {}))
                train_dpo(str(current), tokenizer, stage.extra["rows"], dpo, target)
            current, part = target, part + 1
    return Path(current)


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

    params = {"model": _model_key(model_dir), "examples": file_digest(examples_file), "split": split,
              "eval": eval_cfg.model_dump(), "seed": seed, "method": spec.name, "params": spec.params}
    return run.stage("eval", params, work) / "predictions.jsonl"


def teacher_predictions_stage(run: RunFolder, teacher: LabTeacher, examples_file: Path, split: str) -> Path:
    """The scripted teacher answering the test questions, graded like a student: the report's teacher row."""
    from .evaluate import score
    from .generation import Generated
    from .lab.teacher import ScriptedTeacher

    def work(folder: Path) -> None:
        examples = [e for e in read_jsonl(examples_file, Example) if e.split == split]
        scripted = ScriptedTeacher(teacher.mistake_rate, teacher.spurious_rate, teacher.mistake_types, teacher.seed)
        rows = [score(e, [Generated(r[0].text, "stop", 0)]) for e, r in zip(examples, scripted.solve(examples))]
        write_jsonl(folder / "predictions.jsonl", rows)

    params = {"teacher": teacher.model_dump(), "examples": file_digest(examples_file), "split": split}
    return run.stage("teacher_eval", params, work) / "predictions.jsonl"


# ---- the study ----------------------------------------------------------------------------------------------

SPLITS = {"IND": "test", "OOD": "ood"}  # report label -> examples split


def data_examples_stage(run: RunFolder, data: DataConfig, ood_data: DataConfig | None) -> Path:
    """Examples from the run's data section (every split) and, relabelled as split "ood", from `ood_data`."""
    from .data import load_examples

    def work(folder: Path) -> None:
        examples = load_examples(data.model_copy(update={"split": None}))
        if ood_data is not None:
            examples += [e.model_copy(update={"split": "ood"}) for e in load_examples(ood_data)]
        write_jsonl(folder / "examples.jsonl", examples)

    params = {"data": data.model_dump(), "ood": ood_data.model_dump() if ood_data else None}
    return run.stage("examples", params, work) / "examples.jsonl"


def run_study(cfg: RunConfig) -> Any:
    """Every method × seed, shared stages computed once; writes results.json and report/ in the run folder."""
    from .environment import describe
    from .report import MANIFEST_NAME, RunResult, write_manifest, write_report

    study = cfg.study
    assert study is not None
    run = RunFolder(cfg.run_dir)
    labels = [m.row for m in study.methods]
    if len(set(labels)) != len(labels):
        raise CotdistillError("two methods share a report row; give one a distinct `label`")
    if study.lab is not None:
        examples_file = lab_examples_stage(run, study.lab)
        teacher_dir = lab_teacher_stage(run, study.teacher, examples_file)
        has_ood = study.lab.ood
    else:
        if not study.teacher_outputs or not (Path(study.teacher_outputs) / "rationales.jsonl").is_file():
            raise CotdistillError("study.teacher_outputs must name a `cotdistill teach` folder with rationales.jsonl "
                                  "when study.lab is null")
        examples_file = data_examples_stage(run, cfg.data, study.ood_data)
        teacher_dir = Path(study.teacher_outputs)
        has_ood = study.ood_data is not None
    shared = {"examples": examples_file, "rationales": teacher_dir / "rationales.jsonl"}
    if (teacher_dir / "pairs.jsonl").is_file():
        shared["pairs"] = teacher_dir / "pairs.jsonl"
    splits = {label: split for label, split in SPLITS.items() if split != "ood" or has_ood}
    results: list[RunResult] = []
    for seed in study.seeds:
        init_dir = student_init_stage(run, study.student, seed, [examples_file, shared["rationales"]])
        for spec in study.methods:
            files = dict(shared)
            if spec.name == "coped":  # CoPeD learns from the Std-CoT student's own rationales as well
                std_dir, _, _ = train_stage(run, MethodConfig(name="std_cot"), seed, init_dir, shared, study.train)
                files["student_rationales"] = student_rationales_stage(
                    run, std_dir, examples_file, int(spec.params.get("student_samples", 1)),
                    float(spec.params.get("student_temperature", 0.7)), study.eval.max_new_tokens, seed)
            params = {k: v for k, v in spec.params.items() if k not in ("student_samples", "student_temperature")}
            if spec.name == "morsd":  # MoRSD trains on the rationales its student-measured selection keeps
                selection = dict(params.pop("selection", {}))
                scorer = init_dir
                if selection.get("scorer") == "warm":
                    scorer, _, _ = train_stage(run, MethodConfig(name="std_cot"), seed, init_dir, shared, study.train)
                files["rationales"] = selection_stage(run, scorer, examples_file, shared["rationales"], selection)
            model_dir, n_sequences, seconds = train_stage(run, MethodConfig(name=spec.name, params=params), seed,
                                                          init_dir, files, study.train)
            for label, split in splits.items():
                predictions = eval_split_stage(run, model_dir, examples_file, split, study.eval, seed, spec)
                results.append(RunResult(spec.row, seed, label, predictions, n_sequences, seconds))
    if study.lab is not None:  # the scripted teacher can answer the test questions too: the report's teacher row
        for label, split in splits.items():
            results.append(RunResult("teacher", None, label,
                                     teacher_predictions_stage(run, study.teacher, examples_file, split)))
    environment = describe()  # versions and processor belong to the result: they move the numbers
    write_manifest(run.root / study.report / MANIFEST_NAME, results, baseline=study.baseline, environment=environment)
    comparison, _ = write_report(results, run.root / study.report, baseline=study.baseline,
                                 environments=[environment])
    print(comparison.to_markdown())
    return comparison
