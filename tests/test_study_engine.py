"""The study engine: recipes' needs resolved generically, a validation split for every choice, and runs whose
results.json depends only on the config (not on thread counts, parallel workers, interruptions or the folder)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cotdistill.config import LabData, LabTeacher, ValidationConfig
from cotdistill.records import Example, Rationale, read_jsonl
from cotdistill.runfolder import RunFolder

SRC = str(Path(__file__).parents[1] / "src")


def test_the_study_and_the_pipeline_import_without_a_cycle():
    code = ("import sys, cotdistill.study; assert 'cotdistill.pipeline' not in sys.modules, 'study imports pipeline'; "
            "import cotdistill.pipeline")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": SRC})
    assert result.returncode == 0, result.stderr


def test_the_validation_split_is_carved_from_training_questions_and_never_taught(tmp_path):
    from cotdistill.study import lab_examples_stage, lab_teacher_stage, validation_stage

    run = RunFolder(tmp_path / "run")
    lab = LabData(families=["web_of_lies", "navigate"], train_n=30, test_n=5)
    before = read_jsonl(lab_examples_stage(run, lab), Example)
    examples_file = validation_stage(run, lab_examples_stage(run, lab),
                                     ValidationConfig(fraction=0.2, max_per_task=4, seed=3))
    after = read_jsonl(examples_file, Example)
    held = [e for e in after if e.split == "validation"]
    assert {e.task: sum(h.task == e.task for h in held) for e in held} == {"web_of_lies": 4, "navigate": 4}
    was = {e.id: e.split for e in before}
    assert all(was[e.id] == "train" for e in held)  # carved from training questions only; tests untouched
    assert [e.split for e in after if was[e.id] != "train"] == [s for s in was.values() if s != "train"]
    rationales = read_jsonl(lab_teacher_stage(run, LabTeacher(), examples_file) / "rationales.jsonl", Rationale)
    assert not {r.example_id for r in rationales} & {e.id for e in held}  # no CoT for a validation question
    again = validation_stage(RunFolder(tmp_path / "other"), lab_examples_stage(run, lab),
                             ValidationConfig(fraction=0.2, max_per_task=4, seed=3))
    assert [e.id for e in read_jsonl(again, Example) if e.split == "validation"] == [e.id for e in held]


# ---- whole tiny studies ------------------------------------------------------------------------------------------


def _tiny_config(run_dir: Path) -> dict:
    """Std-CoT and the combined recipe (selection, student samples, CoPeD weights, KRSL, stage 1 epoch chosen on
    validation); a checkpoint every step so an interruption lands mid-stage."""
    return {
        "run_dir": str(run_dir),
        "study": {
            "lab": {"families": ["web_of_lies"], "train_n": 28, "test_n": 8,
                    "difficulty": {"web_of_lies": {"people": 3}}, "ood_difficulty": {"web_of_lies": {"people": 4}}},
            "teacher": {"mistake_rate": 0.3, "samples": 2},
            "student": "lab-tiny",
            "seeds": [0],
            "validation": {"fraction": 0.25, "max_eval": 6},
            "methods": [{"name": "std_cot"},
                        {"name": "combined", "params": {"selection": {"top_k": 1, "scorer": "warm"},
                                                        "stage1": {"epochs": 2, "select_epoch": True},
                                                        "stage2": {"epochs": 2}}}],
            "train": {"learning_rate": 0.003, "epochs": 3, "batch_size": 8, "save_steps": 1},
            "eval": {"batch_size": 16, "max_new_tokens": 24},
        },
    }


def _start(run_dir: Path, threads: str) -> tuple[subprocess.Popen, Path]:
    config = run_dir.with_suffix(".yaml")
    config.write_text(yaml.safe_dump(_tiny_config(run_dir)))
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": threads}
    process = subprocess.Popen([sys.executable, "-m", "cotdistill", "run", str(config)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    return process, config


def _run(run_dir: Path, threads: str) -> None:
    process, _ = _start(run_dir, threads)
    out, err = process.communicate(timeout=900)
    assert process.returncode == 0, err[-3000:]


def _results(run_dir: Path) -> tuple[bytes, dict[str, bytes]]:
    """results.json's bytes and the bytes of every predictions file it names (equal paths could hide changed
    files)."""
    manifest = run_dir / "report" / "results.json"
    runs = json.loads(manifest.read_text())["runs"]
    return manifest.read_bytes(), {r["predictions"]: (manifest.parent / r["predictions"]).read_bytes() for r in runs}


@pytest.mark.slow
def test_results_do_not_depend_on_the_thread_count_or_an_interruption(tmp_path):
    _run(tmp_path / "one_thread", "1")
    reference = _results(tmp_path / "one_thread")
    manifest = json.loads(reference[0])
    # the report names what was chosen on validation, and the choice is the best-scoring epoch
    [selected] = {json.dumps(r["selected"]) for r in manifest["runs"] if r["method"] == "combined"}
    [record] = json.loads(selected)["epochs"]
    assert record["stage"] == "sft" and len(record["candidates"]) == 2
    assert record["validation_strict"] == max(c["validation_strict"] for c in record["candidates"])

    _run(tmp_path / "three_threads", "3")
    assert _results(tmp_path / "three_threads") == reference

    # SIGKILL the whole study (its workers too) once a training checkpoint exists, then rerun it
    killed = tmp_path / "killed"
    process, _ = _start(killed, "2")
    deadline = time.monotonic() + 600
    while not any(killed.glob("stages/train-part-*/*/stages/*/checkpoints/checkpoint-*/trainer_state.json")):
        assert process.poll() is None, "the study ended before any checkpoint was written"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    assert not (killed / "report" / "results.json").exists()
    _run(killed, "2")
    assert _results(killed) == reference


def test_rows_that_share_a_first_stage_train_it_once(tmp_path):
    """EDIT, its stage-1 row and a stage-2 variant start from the same SFT stage (same sequences, schedule, seed and
    initial student): it is trained once and each row continues from it; each row still reports what its whole
    training cost, and a rerun finds every part done."""
    from cotdistill.config import RunConfig
    from cotdistill.study import run_study

    stage1 = {"epochs": 2}
    methods = [{"name": "edit", "params": {"stage1": stage1, "stage2": {"epochs": 1}}},
               {"name": "edit", "label": "edit_stage1_only", "params": {"stages": ["sft"], "stage1": stage1}},
               {"name": "edit", "label": "edit_gamma", "params": {"stage1": stage1, "stage2": {"epochs": 1},
                                                                  "gamma": 0.1}}]
    cfg = _tiny_config(tmp_path / "run")
    cfg["study"].update(methods=methods, validation=None, workers=1, baseline="edit")
    run_study(RunConfig(**cfg))
    stages = tmp_path / "run" / "stages"
    parts = {p.resolve(): json.loads((p / "_done.json").read_text())["params"] for p in stages.glob("train-part-*")}
    [sft] = [p for p, params in parts.items() if not params["from"].startswith("stages/train-part-")]
    krsl = [p for p in parts if p != sft]
    assert len(krsl) == 2 and {parts[p]["from"] for p in krsl} == {f"stages/{sft.name}/model"}
    seconds = {p: json.loads((p / "part.json").read_text())["seconds"] for p in parts}
    rows = [json.loads((f / "train.json").read_text()) | {"folder": f} for f in stages.glob("train-edit-*")]
    assert len(rows) == 3
    for info in rows:
        model = (info["folder"] / info["model"]).resolve()
        assert model.parent == (sft if len(info["stages"]) == 1 else model.parent) and model.parent in parts
        assert info["seconds"] == pytest.approx(seconds[sft] + (seconds[model.parent] if model.parent != sft else 0))
    assert sorted(len(info["stages"]) for info in rows) == [1, 2, 2]
    before = {p: (p / "part.json").stat().st_mtime_ns for p in parts}
    run_study(RunConfig(**cfg))
    assert {p: (p / "part.json").stat().st_mtime_ns for p in parts} == before


def test_jobs_start_longest_first_by_earlier_timings_and_in_config_order_without_them(tmp_path):
    """A long row (DPO) submitted last runs alone while the other workers idle; earlier reports' timings of the
    same run folder move it to the front, rows never timed count as longest, and a broken timing file is no error."""
    from cotdistill.config import MethodConfig
    from cotdistill.study import earlier_train_seconds, longest_first

    jobs = [(MethodConfig(name=n, label=lab), seed) for seed in (1, 2)
            for n, lab in (("std_cot", None), ("edit", None), ("dpo", None), ("std_cot", "std_cot_repeat"))]
    assert longest_first(jobs, {}) == list(range(len(jobs)))
    (tmp_path / "report_s0").mkdir()
    (tmp_path / "report_s0" / "timings.json").write_text(json.dumps({"workers": 2, "runs": [
        {"method": "std_cot", "seed": 0, "train_seconds": 100.0}, {"method": "edit", "seed": 0, "train_seconds": 300.0},
        {"method": "dpo", "seed": 0, "train_seconds": 1500.0}]}))
    (tmp_path / "report_s1").mkdir()
    (tmp_path / "report_s1" / "timings.json").write_text(json.dumps({"workers": 2, "runs": [
        {"method": "dpo", "seed": 1, "train_seconds": 1700.0}]}))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "timings.json").write_text("{not json")
    seconds = earlier_train_seconds(tmp_path)
    assert seconds == {"std_cot": 100.0, "edit": 300.0, "dpo": 1600.0}
    order = [(jobs[i][0].row, jobs[i][1]) for i in longest_first(jobs, seconds)]
    assert order == [("std_cot_repeat", 1), ("std_cot_repeat", 2), ("dpo", 1), ("dpo", 2), ("edit", 1), ("edit", 2),
                     ("std_cot", 1), ("std_cot", 2)]
