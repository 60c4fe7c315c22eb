"""The comparison report: paired bootstrap, mean ± std over seeds, report files, results manifest."""

import json
import math
import random
import shutil
import subprocess
from dataclasses import replace

import numpy as np
import pytest

from conftest import run_cli
from cotdistill.errors import CotdistillError
from cotdistill.evaluate import score
from cotdistill.generation import Generated
from cotdistill.records import Example
from cotdistill.report import (
    Accuracy,
    Delta,
    RunResult,
    _selected_text,
    accuracy_over_seeds,
    comparison_table,
    load_manifest,
    paired_bootstrap,
    paired_bootstrap_mean,
    sample_outputs,
    write_manifest,
    write_report,
)


def rows(correct, task="navigate", benchmark="bbh", flexible=None):
    """Prediction records shaped like evaluate.score's (extra fields included: the report must ignore them)."""
    flexible = correct if flexible is None else flexible
    return [{"id": f"{benchmark}/{task}/{i}", "task": task, "benchmark": benchmark, "gold": "(A)", "output": "...",
             "finish_reason": "stop", "strict": "(A)" if c else "(B)", "flexible": None,
             "strict_correct": c, "flexible_correct": f} for i, (c, f) in enumerate(zip(correct, flexible))]


def outcomes(correct):
    return {f"q{i}": c for i, c in enumerate(correct)}


def reference_bootstrap(method, baseline, n_boot, seed, resample_seeds=True):
    """The documented procedure written out plainly: pure Python except for the shared RNG draws.

    resample_seeds=False is the question-only bootstrap (the same question draw for every seed, seeds fixed)."""
    seeds = sorted(set(method) & set(baseline))
    ids = sorted(set.intersection(*[set(method[s]) & set(baseline[s]) for s in seeds]))
    d = [[int(method[s][q]) - int(baseline[s][q]) for q in ids] for s in seeds]
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(n_boot):
        if resample_seeds and len(seeds) > 1:
            drawn_seeds = [int(i) for i in rng.integers(0, len(seeds), size=len(seeds))]
        else:
            drawn_seeds = list(range(len(seeds)))
        drawn_questions = [int(i) for i in rng.integers(0, len(ids), size=len(ids))]
        reps.append(sum(d[s][q] for s in drawn_seeds for q in drawn_questions) / (len(seeds) * len(ids)))
    reps.sort()

    def percentile(p):  # linear interpolation between closest ranks
        pos = p / 100 * (len(reps) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(reps) - 1)
        return reps[lo] + (pos - lo) * (reps[hi] - reps[lo])

    return 100 * sum(map(sum, d)) / (len(seeds) * len(ids)), 100 * percentile(2.5), 100 * percentile(97.5)


# -- the paired bootstrap -------------------------------------------------------------------------------------


def test_identical_method_has_zero_delta_and_a_zero_width_interval():
    rng = random.Random(1)
    base = {s: outcomes([rng.random() < 0.6 for _ in range(100)]) for s in range(3)}
    d = paired_bootstrap(base, {s: dict(o) for s, o in base.items()})
    assert (d.delta, d.low, d.high) == (0.0, 0.0, 0.0)
    assert not d.excludes_zero and d.n_questions == 100 and d.n_seeds == 3


def test_twenty_more_right_answers_out_of_100_gives_plus_20_points_with_an_interval_excluding_zero():
    base_correct = [i < 50 for i in range(100)]
    better = [i < 70 for i in range(100)]  # the same 50 right plus 20 more
    base = {0: outcomes(base_correct), 1: outcomes(base_correct)}
    d = paired_bootstrap({0: outcomes(better), 1: outcomes(better)}, base)
    assert d.delta == pytest.approx(20.0)
    assert 0 < d.low < 20 < d.high
    # 20 of 100 questions differ: the binomial standard error is 4 points, so the interval is about ±8
    assert d.high - d.low == pytest.approx(2 * 1.96 * 4.0, abs=2.5)
    assert d.excludes_zero and d.cell().endswith(" *")
    assert d.verdict == "beats"  # the interval lies above 0
    assert paired_bootstrap(base, {0: outcomes(better), 1: outcomes(better)}).verdict == "loses"


def test_bootstrap_matches_a_plain_reference_computation_with_the_same_rng():
    rng = random.Random(7)
    method = {s: outcomes([rng.random() < 0.55 for _ in range(60)]) for s in (0, 1, 2)}
    baseline = {s: outcomes([rng.random() < 0.5 for _ in range(60)]) for s in (0, 1, 3)}
    del method[1]["q5"]  # a question missing in one run is dropped from the pairing
    d = paired_bootstrap(method, baseline, n_boot=500, seed=11)
    delta, low, high = reference_bootstrap(method, baseline, 500, 11)
    assert d.n_seeds == 2 and d.n_questions == 59  # seeds 0 and 1 are shared; q5 is missing in one run
    assert (d.delta, d.low, d.high) == pytest.approx((delta, low, high), abs=1e-9)
    assert paired_bootstrap(method, baseline, n_boot=500, seed=11) == d  # fixed seed: reproducible


def test_seedless_run_pairs_with_every_seed_and_nothing_shared_gives_no_delta():
    teacher = {None: outcomes([True] * 10)}
    student = {0: outcomes([True] * 5 + [False] * 5), 1: outcomes([True] * 10)}
    assert paired_bootstrap(teacher, student).delta == pytest.approx(25.0)  # (50 + 0) / 2 points
    assert paired_bootstrap({0: outcomes([True])}, {1: outcomes([True])}) is None


def test_seeds_that_disagree_in_sign_widen_the_interval_to_include_zero():
    """The question-only bootstrap called +8.3 points significant although one seed of three loses 10: resampling
    the seeds as well puts 0 inside the interval (a draw of that seed alone is 1 in 27)."""
    baseline = {s: outcomes([i < 100 for i in range(200)]) for s in range(3)}
    method = {0: outcomes([i < 140 for i in range(200)]),  # +20 points
              1: outcomes([i < 130 for i in range(200)]),  # +15 points
              2: outcomes([i < 80 for i in range(200)])}  # -10 points
    question_only = reference_bootstrap(method, baseline, 2000, 0, resample_seeds=False)
    assert question_only[1] > 0  # the old interval excluded 0
    d = paired_bootstrap(method, baseline)
    assert d.delta == pytest.approx(25 / 3) and d.per_seed == pytest.approx({0: 20.0, 1: 15.0, 2: -10.0})
    assert d.low < 0 < d.high and not d.excludes_zero and "*" not in d.cell() and d.verdict == "ties"
    assert d.low < question_only[1] - 5  # wider by much more than question noise


def test_one_seed_draws_questions_only_and_matches_the_question_only_bootstrap():
    rng = random.Random(3)
    method = {0: outcomes([rng.random() < 0.6 for _ in range(80)])}
    baseline = {0: outcomes([rng.random() < 0.5 for _ in range(80)])}
    d = paired_bootstrap(method, baseline, n_boot=400, seed=5)
    expected = reference_bootstrap(method, baseline, 400, 5, resample_seeds=False)
    assert (d.delta, d.low, d.high) == pytest.approx(expected, abs=1e-9)
    assert d.cell().endswith("(CI over questions only)")


# -- mean ± std and the table ---------------------------------------------------------------------------------


def test_mean_std_formatting():
    acc = accuracy_over_seeds({0: [True] * 5 + [False] * 5, 1: [True] * 6 + [False] * 4, 2: [True] * 7 + [False] * 3})
    assert acc.cell() == "60.0 ± 10.0" and acc.per_seed == {0: 50.0, 1: 60.0, 2: 70.0}
    assert accuracy_over_seeds({0: [True, False]}).cell() == "50.0 ± –"
    assert Accuracy({0: 59.0, 1: 60.0, 2: 61.0}, 10).cell(expected_seeds=4) == "60.0 ± 1.0 (3 of 4 seeds)"
    assert Delta(3.14, -0.5, 6.0, 10, {0: 2.0, 1: 4.28}).cell() == "+3.1 [-0.5, +6.0]"
    one_seed = Delta(3.0, 1.0, 5.0, 10, {0: 3.0})
    assert one_seed.cell() == "+3.0 [+1.0, +5.0] * (CI over questions only)"
    assert one_seed.cell(expected_seeds=3) == "+3.0 [+1.0, +5.0] * (1 of 3 seeds; CI over questions only)"


def make_results(seeds=(0, 1, 2), n=100):
    """std_cot right on 50 (+seed) questions, edit on 20 more; OOD: both right on 40; plus a seedless teacher."""
    out = []
    for s in seeds:
        out += [RunResult("std_cot", s, "IND", rows([i < 50 + s for i in range(n)]), n_sequences=800),
                RunResult("edit", s, "IND", rows([i < 70 + s for i in range(n)]), n_sequences=1600 + s),
                RunResult("std_cot", s, "OOD", rows([i < 40 for i in range(n)], task="navigate_hard")),
                RunResult("edit", s, "OOD", rows([i < 40 for i in range(n)], task="navigate_hard"))]
    out.append(RunResult("teacher", None, "IND", rows([i < 90 for i in range(n)])))
    return out


def test_table_rows_have_means_deltas_counts_and_flags():
    c = comparison_table(make_results())
    assert [r.method for r in c.rows] == ["std_cot", "edit", "teacher"]  # baseline first, teacher last
    assert c.splits == ["IND", "OOD"]
    std, edit, teacher = c.cells()
    assert std[:4] == ["std_cot", "0, 1, 2", "51.0 ± 1.0", "40.0 ± 0.0"] and std[4:6] == ["–", "–"]
    assert edit[2] == "71.0 ± 1.0"
    assert edit[4].startswith("+20.0 [") and edit[4].endswith(" *")
    assert edit[5] == "+0.0 [+0.0, +0.0]"  # identical on OOD: no flag
    assert edit[6] == "1,600–1,602" and std[6] == "800"
    assert teacher[1] == "–" and teacher[2] == "90.0 ± –" and teacher[6] == "–"
    assert "Δ IND vs std_cot [95% CI]" in c.header()


def test_per_seed_table_lists_accuracy_and_delta_per_seed_in_seed_order():
    results = [r for r in make_results() if not (r.method == "edit" and r.seed == 1)]
    c = comparison_table(results)
    header, body = c.per_seed_table()
    assert header == ["method", "IND acc. per seed (0 / 1 / 2)", "OOD acc. per seed (0 / 1 / 2)",
                      "Δ IND per seed (0 / 1 / 2)", "Δ OOD per seed (0 / 1 / 2)"]
    std, edit, teacher = body
    assert std == ["std_cot", "50.0 / 51.0 / 52.0", "40.0 / 40.0 / 40.0", "–", "–"]
    assert edit == ["edit", "70.0 / – / 72.0", "40.0 / – / 40.0", "+20.0 / – / +20.0", "+0.0 / – / +0.0"]
    assert teacher == ["teacher", "90.0", "–", "+40.0 / +39.0 / +38.0", "–"]  # one run, Δ per baseline seed
    md = c.to_markdown()
    assert "| edit | 70.0 / – / 72.0 |" in md and "resamples the paired seeds, then the questions" in md
    data = c.to_dict()
    assert data["seeds"] == [0, 1, 2]
    assert data["rows"][2]["delta"]["IND"]["per_seed"] == [{"seed": 0, "delta": 40.0}, {"seed": 1, "delta": 39.0},
                                                           {"seed": 2, "delta": 38.0}]
    assert data["rows"][1]["accuracy"]["IND"]["per_seed"] == [{"seed": 0, "accuracy": 70.0},
                                                              {"seed": 2, "accuracy": 72.0}]
    assert data["rows"][1]["delta"]["IND"]["interval_covers"] == "seeds and questions"


def test_a_method_missing_a_seed_is_averaged_over_the_seeds_it_has_and_paired_on_shared_ones():
    results = [r for r in make_results() if not (r.method == "edit" and r.seed == 2 and r.split == "IND")]
    c = comparison_table(results)
    edit = next(r for r in c.rows if r.method == "edit")
    assert edit.accuracy["IND"].n_seeds == 2 and edit.accuracy["IND"].mean == pytest.approx(70.5)
    assert edit.delta["IND"].n_seeds == 2
    assert c.cells()[1][2].endswith("(2 of 3 seeds)") and c.cells()[1][4].endswith("(2 of 3 seeds)")


def test_a_delta_on_fewer_questions_than_were_evaluated_is_noted():
    results = make_results(seeds=(0,))
    results[1] = RunResult("edit", 0, "IND", results[1].predictions[:90])  # an evaluation that stopped early
    c = comparison_table(results)
    assert "Δ for edit on IND uses the 90 of 100 questions" in c.to_markdown()
    assert "Δ for teacher" not in c.to_markdown()


def test_an_empty_run_is_an_error():
    with pytest.raises(CotdistillError, match="predictions of edit, seed 0, IND>: no predictions"):
        comparison_table([RunResult("edit", 0, "IND", [])])


def test_without_the_baseline_there_is_no_delta_column():
    c = comparison_table([r for r in make_results() if r.method != "std_cot"])
    assert c.baseline is None and not any(h.startswith("Δ") for h in c.header())
    assert all(len(row) == len(c.header()) for row in c.cells())
    assert "baseline 'std_cot' is not among the methods" in c.to_markdown()


def test_duplicate_runs_and_bad_prediction_rows_are_errors(tmp_path):
    dup = [RunResult("a", 0, "IND", rows([True])), RunResult("a", 0, "IND", rows([False]))]
    with pytest.raises(CotdistillError, match="two runs for method 'a', seed 0"):
        comparison_table(dup)
    bad = tmp_path / "predictions.jsonl"
    good_row, broken = rows([True, False])
    del broken["strict_correct"]
    bad.write_text(json.dumps(good_row) + "\n" + json.dumps(broken) + "\n")
    with pytest.raises(CotdistillError, match=r"predictions.jsonl:2: field 'strict_correct'"):
        comparison_table([RunResult("a", 0, "IND", bad)])


# -- report files ----------------------------------------------------------------------------------------------


def test_report_writes_png_html_markdown_and_json_with_the_table_values(tmp_path):
    comparison, files = write_report(make_results(), tmp_path / "report", metric="strict", n_boot=300)
    png = files.png.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    page = files.html.read_text()
    assert "data:image/png;base64," in page and "<script" not in page  # self-contained, static
    for row in comparison.cells():
        for cell in row:
            assert f">{cell}</td>" in page  # every table value, as shown in the terminal
    assert '<td class="l">bbh/navigate_hard</td><td>100</td>' in page  # the per-task breakdown
    md = files.markdown.read_text()
    assert "## strict accuracy" in md and "## flexible accuracy" in md and "| IND | bbh/navigate |" in md
    data = json.loads(files.json.read_text())
    delta = data["strict"]["rows"][1]["delta"]["IND"]
    assert delta["excludes_zero"] is True and delta["verdict"] == ("beats" if delta["delta"] > 0 else "loses")
    method = data["strict"]["rows"][1]["method"]
    assert f"| {method} | {delta['verdict']} (" in md  # the verdict table names each method's verdict per split
    assert not list((tmp_path / "report").glob(".*.tmp"))  # atomic writes leave no temporaries


def scored_results(seeds=(0, 1), n=30):
    """Predictions made by evaluate.score on lab-like questions: std_cot right on even ids (and on ids below
    twice the seed), edit on all."""
    examples = [Example(id=f"lab/web/{i}", task="web", question=f"Question {i}: does Ann <tell> the truth?",
                        answer="Yes", answer_format="text") for i in range(n)]

    def run(method, seed, right):
        records = [score(e, [Generated(f"{method} seed {seed} reasons on {i}. So the answer is "
                                       f"{'Yes' if right(i, seed) else 'No'}.", "stop", 9)])
                   for i, e in enumerate(examples)]
        return RunResult(method, seed, "IND", records)

    return [run(m, s, right) for s in seeds for m, right in (("std_cot", lambda i, s: i % 2 == 0 or i < 2 * s),
                                                             ("edit", lambda i, s: True))]


def test_sampled_questions_are_seeded_shared_by_every_method_and_shown_side_by_side(tmp_path):
    results = scored_results()
    samples = sample_outputs(results, ["std_cot", "edit"], n=5, sample_seed=1)
    assert len(samples) == 5 and [q.id for q in samples] == sorted(q.id for q in samples)
    assert samples == sample_outputs(results, ["std_cot", "edit"], n=5, sample_seed=1)  # reproducible
    assert [q.id for q in samples] != [q.id for q in sample_outputs(results, ["std_cot", "edit"], 5, 2)]
    assert all(q.answers["edit"][0] == 0 for q in samples)  # the first seed by default
    assert all(q.answers["edit"][0] == 1 for q in sample_outputs(results, ["edit"], 5, 1, run_seed=1))

    _, files = write_report(results, tmp_path, n_boot=50, n_samples=4, sample_seed=1)
    page = files.html.read_text()
    shown = sample_outputs(results, ["std_cot", "edit"], n=4, sample_seed=1)
    assert page.count("<details") == 4
    for q in shown:
        number = q.id.rsplit("/", 1)[1]
        assert f"Question {number}: does Ann &lt;tell&gt; the truth?" in page  # the question, escaped
        assert f"edit seed 0 reasons on {number}. So the answer is Yes." in page
        right = int(number) % 2 == 0
        assert f"{q.id} — strict: std_cot {'✓' if right else '✗'} · edit ✓</summary>" in page
    assert "gold: <b>Yes</b>" in page
    assert "<details" not in write_report(results, tmp_path / "none", n_boot=50, n_samples=0)[1].html.read_text()


def test_report_html_renders_in_headless_chromium(tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium); the HTML is checked as text elsewhere")
    comparison, files = write_report(scored_results(seeds=(0, 1, 2)), tmp_path / "report", n_boot=50, n_samples=3)
    profile = tmp_path / "profile"
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--dump-dom",
         files.html.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert "Uncaught" not in done.stderr and "Refused to" not in done.stderr  # no script or policy error
    assert "<h1>cotdistill: method comparison</h1>" in dom  # the page parsed and rendered, not an empty body
    assert dom.count("<table>") == 8  # two metrics × (table + per seed), the per-task breakdown, 3 samples
    assert ">50.0 / 53.3 / 56.7</td>" in dom  # per-seed accuracy of std_cot
    assert ">+50.0 / +46.7 / +43.3</td>" in dom  # per-seed Δ of edit
    assert f">{comparison.cells()[1][3]}</td>" in dom  # edit's Δ with its interval
    assert 'id="outputs"' in dom and dom.count("<details") == 3


def write_run_files(root, results):
    out = []
    for r in results:
        path = root / r.method / f"seed{r.seed}" / r.split / "predictions.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(row) + "\n" for row in r.predictions))
        out.append(replace(r, predictions=path, wall_time_s=12.5 if r.seed is not None else None))
    return out


def test_manifest_round_trip_and_the_report_command(tmp_path):
    results = write_run_files(tmp_path / "runs", make_results(seeds=(0, 1)))
    manifest = tmp_path / "runs" / "results.json"
    write_manifest(manifest, results, baseline="std_cot", metric="flexible")
    assert not json.loads(manifest.read_text())["runs"][0]["predictions"].startswith("/")  # portable paths
    loaded, back = load_manifest(manifest)
    assert loaded.metric == "flexible" and loaded.baseline == "std_cot"
    assert [(r.method, r.seed, r.split, r.n_sequences, r.wall_time_s) for r in back] == \
        [(r.method, r.seed, r.split, r.n_sequences, r.wall_time_s) for r in results]
    assert [r.rows() for r in back] == [r.rows() for r in results]

    result = run_cli("report", str(tmp_path / "runs"), "--bootstrap", "200")
    assert result.returncode == 0, result.stderr
    assert "| edit | 0, 1 |" in result.stdout and "train time" in result.stdout
    report = tmp_path / "runs" / "report"
    assert (report / "report.html").stat().st_size > 0 and (report / "accuracy.png").stat().st_size > 0
    assert json.loads((report / "comparison.json").read_text())["flexible"]["baseline"] == "std_cot"

    # a study's report folder holds its manifest: rebuilding it writes there, not into report/report
    write_manifest(report / "results.json", results, baseline="std_cot")
    assert run_cli("report", str(report), "--bootstrap", "50").returncode == 0
    assert not (report / "report").exists() and "strict" in json.loads((report / "comparison.json").read_text())
    merged = run_cli("report", str(report), str(tmp_path / "runs"), "--bootstrap", "50")
    assert merged.returncode == 2 and "needs --out" in merged.stderr  # no default to overwrite


def test_a_report_with_its_predictions_rebuilds_and_merges_without_the_run_folder(tmp_path):
    """--with-predictions makes a report folder self-contained (what a study commits in parts): rebuilt from the
    archive alone, after the run folder is gone, it gives the same table, and archiving twice gives the same bytes."""
    import shutil

    write_manifest(tmp_path / "runs" / "results.json", write_run_files(tmp_path / "runs", make_results(seeds=(0, 1))))
    for archive in ("a1", "a2"):
        result = run_cli("report", str(tmp_path / "runs"), "--with-predictions", "--out", str(tmp_path / archive),
                         "--bootstrap", "100")
        assert result.returncode == 0, result.stderr
    first = sorted((tmp_path / "a1" / "predictions").rglob("*.jsonl.gz"))
    assert first and [p.read_bytes() for p in first] == \
        [(tmp_path / "a2" / p.relative_to(tmp_path / "a1")).read_bytes() for p in first]
    table = json.loads((tmp_path / "a1" / "comparison.json").read_text())
    shutil.rmtree(tmp_path / "runs")
    rebuilt = run_cli("report", str(tmp_path / "a1"), "--out", str(tmp_path / "again"), "--bootstrap", "100")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads((tmp_path / "again" / "comparison.json").read_text()) == table


def test_a_part_without_the_baseline_rows_keeps_its_baseline_and_merges_with_deltas_in_any_order(tmp_path):
    """A study part that ran only new rows (study.rows) has no baseline rows of its own; its archive must still name
    the baseline, so a merge that lists it first compares every method against the baseline of the other parts."""
    results = make_results(seeds=(0,))
    base_part = [r for r in results if r.method != "edit"]
    edit_part = [r for r in results if r.method == "edit"]
    for name, part in (("base", base_part), ("edit", edit_part)):
        write_manifest(tmp_path / name / "results.json", write_run_files(tmp_path / name, part), baseline="std_cot")
        archived = run_cli("report", str(tmp_path / name), "--with-predictions", "--out", str(tmp_path / f"a_{name}"),
                           "--bootstrap", "50", "--samples", "0")
        assert archived.returncode == 0, archived.stderr
    assert json.loads((tmp_path / "a_edit" / "results.json").read_text())["baseline"] == "std_cot"
    merged = run_cli("report", str(tmp_path / "a_edit"), str(tmp_path / "a_base"), "--out", str(tmp_path / "m"),
                     "--bootstrap", "50", "--samples", "0")
    assert merged.returncode == 0, merged.stderr
    assert "Δ IND vs std_cot" in merged.stdout and "| edit | beats (+20.0" in merged.stdout


def test_selected_checkpoints_travel_through_the_manifest_into_the_per_seed_table(tmp_path):
    selected = {0: {"epoch": 2, "stage": "sft", "val_acc": 71.0}, 1: "last epoch"}
    results = [r if r.method != "edit" else replace(r, selected=selected[r.seed])
               for r in write_run_files(tmp_path / "runs", make_results(seeds=(0, 1)))]
    manifest = tmp_path / "runs" / "results.json"
    write_manifest(manifest, results)
    _, back = load_manifest(manifest)
    assert [r.selected for r in back] == [r.selected for r in results]
    header, body = comparison_table(back).per_seed_table()
    assert header[-1] == "selected checkpoint per seed (0 / 1)"
    assert body[1][-1] == "epoch=2, stage=sft, val_acc=71.0 / last epoch" and body[0][-1] == "–"
    assert "selected" not in comparison_table(make_results()).per_seed_table()[0][-1]  # absent: no column
    study_choice = {"epochs": [{"stage": "krsl", "by": "validation strict accuracy", "epoch": 1.0,
                                "candidates": [{"epoch": 1.0}, {"epoch": 2.0}]}]}
    assert _selected_text(study_choice) == "krsl epoch 1"  # the cell names the choice, not its candidates


@pytest.mark.parametrize("runs, field", [
    ([{"method": "edit", "seed": 0, "split": "IND", "predictions": "p.jsonl"},
      {"method": "edit", "seed": "one", "split": "IND", "predictions": "p.jsonl"}], "runs[1].seed"),
    ([{"method": "edit", "seed": 0, "predictions": "p.jsonl"}], "runs[0].split"),
    ([{"method": "edit", "seed": 0, "split": "IND", "predictions": "p.jsonl", "n_seqs": 3}], "runs[0].n_seqs"),
    ([{"method": "edit", "seed": 0, "split": "IND", "predictions": "missing.jsonl"}], "runs[0].predictions"),
])
def test_malformed_manifest_error_names_file_and_field(tmp_path, runs, field):
    (tmp_path / "p.jsonl").write_text(json.dumps(rows([True])[0]) + "\n")
    manifest = tmp_path / "results.json"
    manifest.write_text(json.dumps({"runs": runs}))
    with pytest.raises(CotdistillError) as e:
        load_manifest(manifest)
    assert str(e.value).startswith(f"{manifest}: field '{field}'")


def test_report_command_reports_a_bad_manifest_in_one_line(tmp_path):
    (tmp_path / "results.json").write_text('{"runs": [}')
    result = run_cli("report", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().endswith("results.json:1: invalid JSON: Expecting value")
    assert not (tmp_path / "report").exists()


def test_the_bootstrap_of_a_mean_over_benchmarks_draws_seeds_once_then_each_benchmarks_questions():
    """EDIT's OOD Avg Δ: the documented procedure written out plainly, with the seed draw shared by benchmarks."""
    rng = random.Random(3)
    benchmarks = [({s: outcomes([rng.random() < 0.6 for _ in range(n)]) for s in range(3)},
                   {s: outcomes([rng.random() < 0.4 for _ in range(n)]) for s in range(3)}) for n in (30, 12)]
    d = [[[int(m[s][q]) - int(b[s][q]) for q in sorted(m[s])] for s in range(3)] for m, b in benchmarks]
    draws = np.random.default_rng(5)
    reps = []
    for _ in range(400):
        drawn_seeds = [int(i) for i in draws.integers(0, 3, size=3)]
        means = []
        for block in d:
            drawn = [int(i) for i in draws.integers(0, len(block[0]), size=len(block[0]))]
            means.append(sum(block[s][q] for s in drawn_seeds for q in drawn) / (3 * len(drawn)))
        reps.append(sum(means) / len(means))
    got = paired_bootstrap_mean(benchmarks, 400, 5)
    assert (got.low, got.high) == pytest.approx(tuple(100 * np.percentile(reps, [2.5, 97.5])))
    assert got.delta == pytest.approx(100 * np.mean([np.mean(block) for block in d]))
    # one benchmark is the paired bootstrap itself (the reference above)
    assert (paired_bootstrap_mean(benchmarks[:1], 300, 2).low, paired_bootstrap_mean(benchmarks[:1], 300, 2).high) \
        == pytest.approx(reference_bootstrap(*benchmarks[0], 300, 2)[1:])


def test_each_ood_benchmark_gets_a_column_and_ood_avg_weighs_benchmarks_equally(tmp_path):
    results = []
    for s in (0, 1):
        # BB-sub: 10 questions, AGIEval: 100; std_cot right on 5+s and 20, edit on 8 and 60+s
        results += [RunResult("std_cot", s, "OOD BB-sub", rows([i < 5 + s for i in range(10)], benchmark="bbsub")),
                    RunResult("std_cot", s, "OOD AGIEval", rows([i < 20 for i in range(100)], "lsat-ar", "agieval")),
                    RunResult("edit", s, "OOD BB-sub", rows([i < 8 for i in range(10)], benchmark="bbsub")),
                    RunResult("edit", s, "OOD AGIEval", rows([i < 60 + s for i in range(100)], "lsat-ar", "agieval"))]
    c = comparison_table(results)
    assert c.splits == ["OOD AGIEval", "OOD BB-sub", "OOD avg"]
    std, edit = (r.accuracy["OOD avg"] for r in c.rows)
    assert std.mean == pytest.approx(((50 + 20) / 2 + (60 + 20) / 2) / 2)  # not the pooled 25/110
    assert edit.mean == pytest.approx(((80 + 60) / 2 + (80 + 61) / 2) / 2) and edit.n_seeds == 2
    # Δ of the average: the mean of the per-benchmark Δ, per seed and over seeds, with a seed-and-question interval
    avg, per_bench = c.rows[1].delta["OOD avg"], [c.rows[1].delta[b] for b in ("OOD AGIEval", "OOD BB-sub")]
    assert avg.delta == pytest.approx(sum(d.delta for d in per_bench) / 2) == pytest.approx(edit.mean - std.mean)
    assert avg.per_seed == pytest.approx({s: sum(d.per_seed[s] for d in per_bench) / 2 for s in (0, 1)})
    assert avg.low < avg.delta < avg.high and avg.excludes_zero and avg.n_questions == 110
    comparison, files = write_report(results, tmp_path / "report")
    page = files.html.read_text()
    assert "OOD avg strict acc." in comparison.to_markdown()
    assert "agieval/lsat-ar" in page and "bbsub/navigate" in page  # the per-subset breakdown
    one = comparison_table([r for r in results if r.split == "OOD BB-sub"])
    assert one.splits == ["OOD BB-sub"]  # one benchmark: nothing to average
