"""A study runs methods × seeds over shared stages, writes a comparison, and never redoes finished work."""

import json
from pathlib import Path

import pytest
import yaml

from cotdistill.errors import CotdistillError
from cotdistill.methods.base import TrainingStage
from cotdistill.train.trainer import TrainSettings

from conftest import run_cli


def _tiny_study(run_dir: Path, methods: list[dict]) -> dict:
    return {
        "run_dir": str(run_dir),
        "study": {
            "lab": {"families": ["web_of_lies"], "train_n": 24, "test_n": 8,
                    "difficulty": {"web_of_lies": {"people": 3}}, "ood_difficulty": {"web_of_lies": {"people": 4}}},
            "teacher": {"mistake_rate": 0.3, "samples": 2},
            "student": "lab-tiny",
            "seeds": [0],
            "methods": methods,
            "train": {"learning_rate": 0.003, "epochs": 1, "batch_size": 16, "save_steps": 100000},
            "eval": {"batch_size": 16, "max_new_tokens": 24},
        },
    }


@pytest.mark.slow
def test_a_study_compares_methods_and_reruns_nothing(tmp_path):
    config = tmp_path / "study.yaml"
    run_dir = tmp_path / "run"
    methods = [{"name": "std_cot"}, {"name": "edit", "params": {"stage1": {"epochs": 1}, "stage2": {"epochs": 1}}},
               {"name": "coped"}, {"name": "morsd", "params": {"selection": {"top_k": 1}}}]
    config.write_text(yaml.safe_dump(_tiny_study(run_dir, methods)))

    first = run_cli("run", str(config))
    assert first.returncode == 0, first.stderr[-3000:]
    manifest = json.loads((run_dir / "report" / "results.json").read_text())
    runs = {(r["method"], r["split"]) for r in manifest["runs"]}
    assert runs == {(m, s) for m in ["std_cot", "edit", "coped", "morsd", "teacher"] for s in ["IND", "OOD"]}
    counts = {r["method"]: r.get("n_sequences") for r in manifest["runs"] if r["split"] == "IND"}
    assert counts["edit"] > counts["std_cot"]  # stage 1 adds rectified CoTs, stage 2 the dual pairs
    for name in ["comparison.md", "comparison.json", "accuracy.png", "report.html"]:
        assert (run_dir / "report" / name).stat().st_size > 0
    assert "| edit |" in first.stdout and "Δ IND vs std_cot" in first.stdout
    # CoPeD reused Std-CoT's trained student (one Std-CoT training stage in the run folder)
    assert len(list((run_dir / "stages").glob("train-std_cot-*"))) == 1

    second = run_cli("run", str(config))
    assert second.returncode == 0, second.stderr[-3000:]
    assert "running" not in second.stderr  # every stage is up to date
    assert json.loads((run_dir / "report" / "results.json").read_text()) == manifest


def test_a_study_rejects_an_unknown_method_before_training(tmp_path):
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(_tiny_study(tmp_path / "run", [{"name": "no_such_method"}])))
    result = run_cli("run", str(config))
    assert result.returncode == 2
    assert "unknown method 'no_such_method'" in result.stderr


def test_a_recipes_stage_schedule_overrides_the_run_settings():
    settings = TrainSettings(batch_size=8, learning_rate=1e-3, weight_decay=0.0)
    stage = TrainingStage(name="krsl", sequences=[], learning_rate=5e-6,
                          extra={"batch_size": 256, "lr_decay_per_epoch": 0.95, "weight_decay": 0.05,
                                 "max_length": 512, "stats": {"pairs": 3}})
    staged = settings.for_stage(stage)
    assert (staged.grad_accum, staged.epoch_decay, staged.weight_decay, staged.max_length) == (32, 0.95, 0.05, 512)
    assert staged.arguments(Path("/tmp/unused"), stage).learning_rate == 5e-6
    assert settings.for_stage(TrainingStage(name="plain", sequences=[])) == settings


def test_a_non_lab_study_needs_teacher_outputs(tmp_path):
    from cotdistill.config import RunConfig
    from cotdistill.study import run_study

    cfg = RunConfig(run_dir=str(tmp_path / "run"), study={"lab": None, "teacher_outputs": str(tmp_path / "none")})
    with pytest.raises(CotdistillError, match="teacher_outputs"):
        run_study(cfg)


@pytest.mark.parametrize("config", sorted((Path(__file__).parents[1] / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_validates_and_names_registered_methods(config):
    from cotdistill.config import load_config
    from cotdistill.methods import REGISTRY

    cfg = load_config(config)
    if cfg.study is not None:
        assert {m.name for m in cfg.study.methods} <= set(REGISTRY)
        assert len({m.row for m in cfg.study.methods}) == len(cfg.study.methods)


def test_a_data_study_gives_each_ood_benchmark_its_own_column(tmp_path, shared_data):
    from collections import Counter

    from cotdistill.config import DataConfig
    from cotdistill.records import Example, read_jsonl
    from cotdistill.pipeline import RunFolder
    from cotdistill.study import data_examples_stage, ood_splits

    ood = [DataConfig(source="bbh", subtasks=["navigate"], limit_per_task=2, label="BBH-nav"),
           DataConfig(source="agieval", subtasks=["lsat-ar", "sat-math"], limit_per_task=3),
           DataConfig(source="arc", limit_per_task=4)]
    examples_file = data_examples_stage(RunFolder(tmp_path / "run"), DataConfig(source="bbh", subtasks=["snarks"]), ood)
    assert ood_splits(examples_file) == {"OOD BBH-nav": "ood/BBH-nav", "OOD AGIEval": "ood/AGIEval",
                                         "OOD ARC-E": "ood/ARC-E"}
    splits = Counter(e.split for e in read_jsonl(examples_file, Example))
    assert splits == {"train": 142, "test": 36, "ood/BBH-nav": 2, "ood/AGIEval": 6, "ood/ARC-E": 4}


@pytest.mark.slow
def test_a_study_on_teach_outputs_gets_a_teacher_row_from_the_teachers_test_answers(tmp_path):
    from cotdistill.lab.generate import generate_examples
    from cotdistill.records import write_jsonl

    data = tmp_path / "q.jsonl"
    write_jsonl(data, generate_examples("web_of_lies", 40, 0, {"people": 3}, split="train")
                + generate_examples("web_of_lies", 30, 1, {"people": 3}, split="test"))
    teach = tmp_path / "teach"
    common = ["--backend", "scripted", "--data", "file", "--data-file", str(data), "--limit-per-task", "24"]
    # without the teacher's test answers the study says why it has no teacher row
    assert run_cli("teach", *common, "--run-dir", str(teach)).returncode == 0
    study = _tiny_study(tmp_path / "run", [{"name": "std_cot"}])
    study["data"] = {"source": "file", "path": str(data), "limit_per_task": 24}
    study["study"].update(lab=None, teacher_outputs=str(teach))
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(study))
    first = run_cli("run", str(config))
    assert first.returncode == 0, first.stderr[-3000:]
    assert "no teacher row" in first.stderr and "--test-split test" in first.stderr
    assert "| teacher |" not in first.stdout

    assert run_cli("teach", *common, "--test-split", "test", "--run-dir", str(teach)).returncode == 0
    second = run_cli("run", str(config))
    assert second.returncode == 0, second.stderr[-3000:]
    manifest = json.loads((tmp_path / "run" / "report" / "results.json").read_text())
    assert {(r["method"], r["split"]) for r in manifest["runs"]} == {("std_cot", "IND"), ("teacher", "IND")}
    teacher_rows = (tmp_path / "run" / "report" / Path(next(r["predictions"] for r in manifest["runs"]
                                                               if r["method"] == "teacher")))
    predictions = [json.loads(line) for line in teacher_rows.read_text().splitlines()]
    assert len(predictions) == 24  # limit_per_task applies to the test split too, after the split
    assert "| teacher |" in second.stdout


def test_zero_shot_row_evaluates_the_untrained_student_once_seedless_when_it_is_pretrained(tmp_path):
    """A pretrained student has the same weights under every seed and greedy decoding is deterministic, so the
    zero-shot row runs once, without a seed, and trains nothing; a from-scratch preset gets one run per seed."""
    from cotdistill.config import MethodConfig, StudyConfig
    from cotdistill.lab.generate import generate_examples
    from cotdistill.lab.students import build_student
    from cotdistill.study import job_seeds

    texts = [e.question for e in generate_examples("web_of_lies", 20, 0, {"people": 3})]
    pretrained = tmp_path / "pretrained"
    build_student("lab-tiny", texts, 0, save_to=pretrained)
    zero = MethodConfig(name="zero_shot")
    assert job_seeds(StudyConfig(student=str(pretrained), seeds=[0, 1]), zero) == [None]
    assert job_seeds(StudyConfig(student="lab-tiny", seeds=[0, 1]), zero) == [0, 1]
    assert job_seeds(StudyConfig(student=str(pretrained), seeds=[0, 1]), MethodConfig(name="std_cot")) == [0, 1]

    study = _tiny_study(tmp_path / "run", [{"name": "zero_shot"}])
    study["study"].update(student=str(pretrained), seeds=[0, 1], baseline="zero_shot")
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(study))
    result = run_cli("run", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "run" / "report" / "results.json").read_text())
    assert {(r["method"], r.get("seed"), r["split"]) for r in manifest["runs"] if r["method"] == "zero_shot"} == \
        {("zero_shot", None, "IND"), ("zero_shot", None, "OOD")}
    assert not list((tmp_path / "run" / "stages").glob("train-*"))  # nothing was trained
    assert "| zero_shot |" in result.stdout


def test_a_method_may_run_a_subset_of_the_study_seeds_and_no_other(tmp_path):
    from cotdistill.config import MethodConfig, StudyConfig
    from cotdistill.study import check_methods, job_seeds

    study = StudyConfig(seeds=[0, 1, 2], methods=[MethodConfig(name="std_cot"), MethodConfig(name="coped", seeds=[2, 0])])
    assert [job_seeds(study, m) for m in study.methods] == [[0, 1, 2], [0, 2]]  # in the study's order
    check_methods(study)
    with pytest.raises(CotdistillError, match="must be among study.seeds"):
        check_methods(study.model_copy(update={"methods": [MethodConfig(name="coped", seeds=[5])]}))


def test_study_rows_runs_only_the_named_rows_and_an_unknown_row_fails_before_anything_runs(tmp_path):
    """A study run in parts can add a row later and run it alone (study.rows), with the other rows' stages and
    report untouched; a misspelt row must not silently run nothing."""
    from cotdistill.config import MethodConfig, StudyConfig
    from cotdistill.study import check_methods, rows_to_run

    methods = [MethodConfig(name="std_cot"), MethodConfig(name="morsd"),
               MethodConfig(name="morsd", label="morsd_longer", params={"stage": {"epochs": 14}})]
    study = StudyConfig(methods=methods, rows=["morsd_longer"])
    check_methods(study)
    assert [m.row for m in rows_to_run(study)] == ["morsd_longer"]
    assert [m.row for m in rows_to_run(study.model_copy(update={"rows": None}))] == ["std_cot", "morsd", "morsd_longer"]
    with pytest.raises(CotdistillError, match=r"study.rows names \['morsd_long'\]"):
        check_methods(study.model_copy(update={"rows": ["morsd_long"]}))
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(_tiny_study(tmp_path / "run", [m.model_dump() for m in methods])))
    plan = _dry_run(config, tmp_path, "study.rows=[morsd_longer]")
    assert [line.split(" | ")[0] for line in plan.splitlines() if line.startswith("| ") and " | 0 | " in line] == \
        ["| morsd_longer"]


def _dry_run(config: Path, cwd: Path, *overrides: str):
    result = run_cli("run", str(config), *overrides, "--dry-run", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (cwd / "runs").exists()  # a plan writes nothing: no run folder, no stage
    return result.stdout


CONFIGS = Path(__file__).parents[1] / "configs"


def test_dry_run_plans_the_cpu_bbh_study_and_its_cost_without_training(shared_data, tmp_path):
    out = _dry_run(CONFIGS / "bbh_study_cpu.yaml", tmp_path)
    # EDIT's Table 1 columns, with the question counts the config asks for (4 tasks x 8; 8 per OOD benchmark)
    assert "Report columns: IND (32), OOD BB-sub (8), OOD AGIEval (8), OOD ARC-E (8)" in out
    assert "STAND-INS" in out  # the teacher folder is not there yet: the plan says what it assumed
    for row in ["| zero_shot | – | (no training) |", "| std_cot | 0, 1, 2 | sft |", "| edit | 0, 1, 2 | krsl |",
                "| edit_stage1_only | 0 | sft |", "| coped | 0 |", "| morsd | 0 |", "| combined | 0 | krsl |",
                "| answer_only | 0 |"]:
        assert row in out, row
    # 11 row x seed trainings; edit_stage1_only's SFT is edit's seed-0 SFT, trained once and not counted twice
    # (3 std_cot + 3 x 2 edit + answer_only + coped + morsd + 2 combined)
    assert "Trainings: 11 (methods x seeds, shared stages once) in 14 training parts" in out
    hours = float(out.split("Time on CPU: about ")[1].split(" h")[0])
    assert 1.0 < hours <= 2.0  # the config is sized to its 2-hour budget by the same arithmetic


def test_dry_run_reads_an_existing_teacher_folder(shared_data, tmp_path):
    teach = tmp_path / "teach"
    release = shared_data / "bbh" / "codex-cot" / "navigate_few_shot_template_0-255000.json"
    assert run_cli("import", str(release), "--model", "code-davinci-002", "--run-dir", str(teach)).returncode == 0
    out = _dry_run(CONFIGS / "bbh_study_cpu.yaml", tmp_path, f"study.teacher_outputs={teach}",
                   "data.subtasks=[navigate]", "study.methods=[{name: std_cot}]")
    from cotdistill.data.bbh import load_bbh
    from cotdistill.records import Rationale, read_jsonl

    train = {e.id for e in load_bbh(["navigate"]) if e.split == "train"}
    first8 = sorted(train, key=lambda i: int(i.rsplit("/", 1)[1]))[:8]
    right = [r for r in read_jsonl(teach / "rationales.jsonl", Rationale) if r.example_id in first8 and r.correct]
    assert f"Teacher outputs: {teach} (read): 8 teacher" in out
    assert f"| std_cot | 0, 1, 2 | sft | {len(right)} |" in out  # Std-CoT trains on the correct Codex CoTs


@pytest.mark.slow
def test_dry_run_plans_the_full_scale_bbh_study(shared_data, tmp_path):
    out = _dry_run(CONFIGS / "bbh_study.yaml", tmp_path)
    assert "Questions per split: ood/AGIEval 2,546, ood/ARC-E 2,376, ood/BB-sub 4,542, test 1,302, train 4,688, " \
           "validation 521" in out  # all 27 tasks, full test sets
    assert "Time on GPU: about" in out and "| combined | 0, 1, 2 | krsl |" in out
