"""Compare methods over seeds: accuracy tables, a paired bootstrap against a baseline, a bar plot, an HTML page.

The input is evaluation output only (each run's predictions.jsonl, as evaluate.score writes it), so a report
can be rebuilt at any time from a results manifest without retraining: `cotdistill report RUN_DIR_OR_MANIFEST`.

Accuracy is in percent. "mean ± std" is over seeds: the mean of the per-seed accuracies and their sample
standard deviation (ddof 1); with one seed the std is shown as "–".

The paired bootstrap for Δ (method minus baseline, in accuracy points), per split, covers both sources of
variation, the seeds and the questions:
1. Seeds: those both the method and the baseline have (k of them). A run without a seed (the teacher) pairs
   with every seed of the other side.
2. Questions: the ids present in every one of those runs of both sides, sorted (n of them).
3. d[s, q] = correct_method(s, q) - correct_baseline(s, q), in {-1, 0, 1}. Per-seed Δ = mean of d[s, :];
   Δ = mean of d over seeds and questions (= the mean of the per-seed Δ).
4. rng = numpy.random.default_rng(bootstrap_seed); for each of B replicates (default 2000): when k > 1, draw
   k seed indices with replacement, `rng.integers(0, k, size=k)`; then draw n question indices with
   replacement, `rng.integers(0, n, size=n)`; the replicate is the mean of d over the drawn seeds × the drawn
   questions (each drawn seed row at the drawn question columns: pairing by seed and by question is kept).
   Seeds and questions are crossed (every seed answers the same questions), so both are resampled
   independently, each with replacement.
5. The 95% interval is the 2.5th and 97.5th percentiles of the B replicates (numpy's linear interpolation).
   It is flagged (*) when it excludes 0. With one seed, step 4 draws questions only, and the cell says so.
"OOD avg" (EDIT's OOD average: each OOD benchmark counts once) has its Δ from the same procedure with the seed
draw of step 4 shared by the benchmarks and each benchmark's questions drawn in turn (paired_bootstrap_mean).
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import CotdistillError, RecordError
from .records import atomic_write_bytes, atomic_write_text, iter_jsonl, parse_record, write_jsonl

Metric = Literal["strict", "flexible"]
METRICS: tuple[Metric, ...] = ("strict", "flexible")
TEACHER = "teacher"
MANIFEST_NAME = "results.json"
SPLIT_ORDER = ("IND", "OOD")  # these come first, in this order; other split labels follow alphabetically
OOD_PREFIX = "OOD "  # split labels "OOD <benchmark>" are OOD benchmarks; with two or more, "OOD avg" follows
OOD_AVERAGE = "OOD avg"
DASH = "–"
Seed = int | None  # None: a run without a seed (the teacher)


class PredictionRow(BaseModel):
    """The fields of one evaluate.score record that a report needs; the rest of the record is ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1)
    task: str = Field(min_length=1)
    benchmark: str = ""
    strict_correct: bool
    flexible_correct: bool
    # shown in the side-by-side outputs only; older predictions files lack the question
    question: str = ""
    gold: str = ""
    output: str = ""
    strict: str | None = None
    flexible: str | None = None

    def correct(self, metric: Metric) -> bool:
        return self.strict_correct if metric == "strict" else self.flexible_correct

    @property
    def task_key(self) -> str:
        return f"{self.benchmark}/{self.task}" if self.benchmark else self.task


def load_predictions(path: str | os.PathLike) -> list[PredictionRow]:
    """Read a predictions.jsonl; a bad line raises a RecordError naming file, line and field."""
    rows: list[PredictionRow] = []
    seen: set[str] = set()
    for number, value in iter_jsonl(path):
        row = parse_record(PredictionRow, value, str(path), number)
        if row.id in seen:
            raise RecordError(str(path), number, "id", f"duplicate question id {row.id!r}")
        seen.add(row.id)
        rows.append(row)
    if not rows:
        raise CotdistillError(f"{path}: no predictions")
    return rows


@dataclass(frozen=True)
class RunResult:
    """One evaluated run: a method trained with one seed, evaluated on one split ("IND", "OOD", ...).

    `predictions` is a predictions.jsonl path or its rows; `seed` is None for runs without seeds (the teacher).
    `selected` says which checkpoint was evaluated when a validation split chose it: free text or a dict such as
    {"epoch": 2, "stage": "sft", "val_acc": 71.0}.
    """

    method: str
    seed: int | None
    split: str
    predictions: str | os.PathLike | Sequence[Mapping | PredictionRow]
    n_sequences: int | None = None
    wall_time_s: float | None = None
    selected: str | Mapping[str, object] | None = None

    def rows(self) -> list[PredictionRow]:
        if isinstance(self.predictions, (str, os.PathLike)):
            return load_predictions(self.predictions)
        where = f"<predictions of {self.method}, seed {self.seed}, {self.split}>"
        if not self.predictions:
            raise CotdistillError(f"{where}: no predictions")
        return [r if isinstance(r, PredictionRow) else parse_record(PredictionRow, r, where, i)
                for i, r in enumerate(self.predictions, start=1)]

    def loaded(self) -> RunResult:
        """The same run with its rows read, so several views of a report read each file once."""
        return replace(self, predictions=tuple(self.rows()))


Runs = dict[tuple[str, str], dict[Seed, list[PredictionRow]]]  # (method, split) -> seed -> rows


def _collect(results: Sequence[RunResult]) -> Runs:
    runs: Runs = {}
    for r in results:
        per_seed = runs.setdefault((r.method, r.split), {})
        if r.seed in per_seed:
            raise CotdistillError(f"two runs for method {r.method!r}, seed {r.seed}, split {r.split!r}")
        per_seed[r.seed] = r.rows()
        if None in per_seed and len(per_seed) > 1:
            raise CotdistillError(f"method {r.method!r} ({r.split}) mixes runs with and without a seed")
    return runs


def _ordered_splits(splits: set[str]) -> list[str]:
    ordered = [s for s in SPLIT_ORDER if s in splits] + sorted(splits - set(SPLIT_ORDER))
    return ordered + ([OOD_AVERAGE] if len(_ood_benchmarks(ordered)) > 1 else [])


def _ood_benchmarks(splits: Sequence[str]) -> list[str]:
    return [s for s in splits if s.startswith(OOD_PREFIX) and s != OOD_AVERAGE]


def ood_average(per_split: Mapping[str, Mapping[int | None, Sequence[bool]]]) -> Accuracy | None:
    """EDIT's OOD "Avg": per seed, the mean of the OOD benchmarks' accuracies (each benchmark counts once,
    whatever its size), then mean ± std over the seeds that ran every benchmark. Its Δ: paired_bootstrap_mean."""
    seeds = set.intersection(*(set(outcomes) for outcomes in per_split.values())) if per_split else set()
    if not seeds:
        return None
    per_seed = {s: float(np.mean([100.0 * sum(o[s]) / len(o[s]) for o in per_split.values()])) for s in sorted(seeds, key=str)}
    questions = sum(max(len(v) for v in o.values()) for o in per_split.values())
    return Accuracy(per_seed, questions)


def _ordered_methods(results: Sequence[RunResult], baseline: str | None) -> list[str]:
    """The baseline first, then methods in the order they were given, the teacher last."""
    names = list(dict.fromkeys(r.method for r in results))
    head = [baseline] if baseline in names else []
    tail = [TEACHER] if TEACHER in names and TEACHER != baseline else []
    return head + [m for m in names if m not in head and m not in tail] + tail


# -- statistics ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accuracy:
    """Accuracy in percent per seed (None: a run without a seed), summarised as mean and sample std over seeds."""

    per_seed: dict[Seed, float]
    n_questions: int

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.per_seed.values())))

    @property
    def std(self) -> float | None:  # None with one seed
        return float(np.std(list(self.per_seed.values()), ddof=1)) if len(self.per_seed) > 1 else None

    @property
    def n_seeds(self) -> int:
        return len(self.per_seed)

    def cell(self, expected_seeds: int = 0) -> str:
        std = DASH if self.std is None else f"{self.std:.1f}"
        return f"{self.mean:.1f} ± {std}{_marks(self.n_seeds, expected_seeds)}"


def _marks(n_seeds: int, expected: int, *extra: str) -> str:
    """Visible marks on a cell: computed from fewer seeds than the comparison has, and any extra remark."""
    parts = ([f"{n_seeds} of {expected} seeds"] if 0 < n_seeds < expected else []) + list(extra)
    return f" ({'; '.join(parts)})" if parts else ""


def accuracy_over_seeds(per_seed: Mapping[Seed, Sequence[bool]]) -> Accuracy:
    """Each seed's accuracy (per_seed: seed -> that run's outcomes), with mean and sample std over seeds."""
    return Accuracy({s: 100.0 * sum(o) / len(o) for s, o in per_seed.items()},
                    max(len(o) for o in per_seed.values()))


@dataclass(frozen=True)
class Delta:
    """Method minus baseline in accuracy points: overall, per paired seed, and the bootstrap's 95% interval."""

    delta: float
    low: float
    high: float
    n_questions: int
    per_seed: dict[Seed, float]

    @property
    def n_seeds(self) -> int:
        return len(self.per_seed)

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    @property
    def verdict(self) -> str:
        """"beats" or "loses" when the interval lies above or below 0, else "ties"."""
        return "beats" if self.low > 0 else "loses" if self.high < 0 else "ties"

    def cell(self, expected_seeds: int = 0) -> str:
        flag = " *" if self.excludes_zero else ""
        questions_only = ("CI over questions only",) if self.n_seeds == 1 else ()
        return f"{self.delta:+.1f} [{self.low:+.1f}, {self.high:+.1f}]{flag}" \
               f"{_marks(self.n_seeds, expected_seeds, *questions_only)}"


def _seed_key(seed: Seed) -> tuple[bool, int]:
    return seed is not None, seed or 0


Outcomes = Mapping[Seed, Mapping[str, bool]]  # seed -> question id -> correct


def paired_bootstrap(method: Outcomes, baseline: Outcomes, n_boot: int = 2000, seed: int = 0) -> Delta | None:
    """Δ and its 95% interval as the module docstring describes; None when no seed or question is shared."""
    return paired_bootstrap_mean([(method, baseline)], n_boot, seed)


def paired_bootstrap_mean(benchmarks: Sequence[tuple[Outcomes, Outcomes]], n_boot: int = 2000,
                          seed: int = 0) -> Delta | None:
    """Δ of the mean over benchmarks (each counts once, as in EDIT's OOD "Avg") of the per-benchmark accuracy,
    with a 95% interval: each replicate draws the seeds once (a seed's student answers every benchmark), then each
    benchmark's questions in turn. One benchmark is the module docstring's bootstrap, draw for draw. None when
    a benchmark shares no question, or no seed is shared by all."""
    if n_boot < 1:
        raise CotdistillError(f"the bootstrap needs at least 1 replicate, got {n_boot}")
    seed_sets = [set(b) if None in m else set(m) if None in b else set(m) & set(b) for m, b in benchmarks]
    seeds = sorted(set.intersection(*seed_sets), key=_seed_key) if seed_sets else []
    if not seeds:
        return None
    blocks = []
    for method, baseline in benchmarks:
        sides = [(method[None] if None in method else method[s], baseline[None] if None in baseline else baseline[s])
                 for s in seeds]
        ids = sorted(set.intersection(*(set(m) & set(b) for m, b in sides)))
        if not ids:
            return None
        blocks.append(np.array([[float(m[q]) - float(b[q]) for q in ids] for m, b in sides]))
    k = len(seeds)
    rng = np.random.default_rng(seed)
    replicates = np.empty(n_boot)
    seed_counts = np.ones(k)
    for i in range(n_boot):  # counts of each drawn seed and question: c·d·w/(k·n) is the mean of the draw
        if k > 1:
            seed_counts = np.bincount(rng.integers(0, k, size=k), minlength=k)
        total = 0.0
        for d in blocks:
            n = d.shape[1]
            total += seed_counts @ d @ np.bincount(rng.integers(0, n, size=n), minlength=n) / (k * n)
        replicates[i] = total / len(blocks)
    low, high = np.percentile(replicates, [2.5, 97.5])
    per_seed = {s: 100 * float(np.mean([d[j].mean() for d in blocks])) for j, s in enumerate(seeds)}
    point = float(np.mean([d.mean() for d in blocks]))
    return Delta(100 * point, 100 * float(low), 100 * float(high), sum(d.shape[1] for d in blocks), per_seed)


# -- the comparison table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComparisonRow:
    method: str
    seeds: tuple[Seed, ...]
    accuracy: dict[str, Accuracy]  # split -> accuracy over seeds (absent: no run on that split)
    delta: dict[str, Delta]  # split -> Δ vs the baseline (absent: no baseline, or nothing shared)
    n_sequences: tuple[int, ...]
    wall_time_s: tuple[float, ...]
    selected: dict[Seed, str | Mapping[str, object]] = field(default_factory=dict)  # seed -> selected checkpoint


@dataclass(frozen=True)
class Comparison:
    rows: list[ComparisonRow]
    splits: list[str]
    metric: Metric
    baseline: str | None  # None when the requested baseline is not among the methods
    requested_baseline: str | None
    seeds: list[int]  # the distinct seeds over all runs: a cell with fewer is flagged; per-seed values follow them
    n_boot: int
    boot_seed: int
    breakdown: dict[str, dict[str, dict[str, Accuracy]]] = field(default_factory=dict)  # split -> task -> method

    @property
    def expected_seeds(self) -> int:
        return len(self.seeds)

    def header(self) -> list[str]:
        cols = ["method", "seeds"] + [f"{s} {self.metric} acc. (mean ± std)" for s in self.splits]
        if self.baseline:
            cols += [f"Δ {s} vs {self.baseline} [95% CI]" for s in self.splits]
        cols.append("train sequences")
        if any(r.wall_time_s for r in self.rows):
            cols.append("train time")
        return cols

    def cells(self) -> list[list[str]]:
        timed = any(r.wall_time_s for r in self.rows)
        out = []
        for r in self.rows:
            row = [r.method, ", ".join(DASH if s is None else str(s) for s in r.seeds)]
            expected = 0 if r.seeds == (None,) else self.expected_seeds  # a seedless run misses no seed
            row += [r.accuracy[s].cell(expected) if s in r.accuracy else DASH for s in self.splits]
            if self.baseline:  # the baseline's own row has no Δ
                row += [r.delta[s].cell(self.expected_seeds) if s in r.delta else DASH for s in self.splits]
            row.append(_count_range(r.n_sequences))
            if timed:
                row.append(_duration(sum(r.wall_time_s) / len(r.wall_time_s)) if r.wall_time_s else DASH)
            out.append(row)
        return out

    def per_seed_table(self) -> tuple[list[str], list[list[str]]]:
        """One row per method; each cell lists a value per seed, in the order of `seeds`, "–" where missing.

        A seedless run (the teacher) has one accuracy; its Δ is per seed of the baseline."""
        order = " / ".join(map(str, self.seeds)) or DASH
        header = ["method"] + [f"{s} acc. per seed ({order})" for s in self.splits]
        if self.baseline:
            header += [f"Δ {s} per seed ({order})" for s in self.splits]
        selected = any(r.selected for r in self.rows)
        if selected:
            header.append(f"selected checkpoint per seed ({order})")
        body = []
        for r in self.rows:
            row = [r.method] + [self._by_seed(r.accuracy[s].per_seed, "{:.1f}") if s in r.accuracy else DASH
                                for s in self.splits]
            if self.baseline:
                row += [self._by_seed(r.delta[s].per_seed, "{:+.1f}") if s in r.delta else DASH
                        for s in self.splits]
            if selected:
                row.append(self._by_seed({s: _selected_text(v) for s, v in r.selected.items()}, "{}")
                           if r.selected else DASH)
            body.append(row)
        return header, body

    def _by_seed(self, values: Mapping[Seed, object], fmt: str) -> str:
        if list(values) == [None]:
            return fmt.format(values[None])
        return " / ".join(fmt.format(values[s]) if s in values else DASH for s in self.seeds)

    def notes(self) -> list[str]:
        notes = []
        if self.baseline:
            notes.append(f"Δ: accuracy points vs {self.baseline}, paired by question and seed; 95% interval from a "
                         f"two-level bootstrap that resamples the paired seeds, then the questions, each with "
                         f"replacement (B={self.n_boot}, seed {self.boot_seed}); * marks an interval that excludes "
                         "0. With one seed the interval covers question sampling only.")
            base = next(r for r in self.rows if r.method == self.baseline)
            for r in self.rows:
                for s, d in r.delta.items():
                    most = max(r.accuracy[s].n_questions, base.accuracy[s].n_questions)
                    if d.n_questions < most:  # e.g. an evaluation that stopped early
                        notes.append(f"Δ for {r.method} on {s} uses the {d.n_questions} of {most} questions "
                                     "that both sides answered in every paired run.")
        elif self.requested_baseline:
            notes.append(f"No Δ column: the baseline {self.requested_baseline!r} is not among the methods.")
        notes.append("mean ± std over seeds (sample std; – with one seed).")
        return notes

    def verdict_table(self) -> tuple[list[str], list[list[str]]]:
        """One row per method other than the baseline: per split, whether it beats, ties or loses to the baseline,
        with its Δ and interval (empty when there is no baseline)."""
        if not self.baseline:
            return [], []
        header = ["method"] + [f"{s} vs {self.baseline}" for s in self.splits]
        body = [[r.method] + [f"{r.delta[s].verdict} ({r.delta[s].cell(self.expected_seeds)})" if s in r.delta
                              else DASH for s in self.splits]
                for r in self.rows if r.method != self.baseline and r.delta]
        return header, body

    def breakdown_table(self) -> tuple[list[str], list[list[str]]]:
        methods = [r.method for r in self.rows]
        header = ["split", "task", "n"] + methods
        body = []
        for split, tasks in self.breakdown.items():
            for task, per_method in tasks.items():
                n = max(a.n_questions for a in per_method.values())
                body.append([split, task, str(n)] + [per_method[m].cell() if m in per_method else DASH
                                                     for m in methods])
        return header, body

    def to_markdown(self) -> str:
        verdicts = self.verdict_table()
        return "\n\n".join([markdown_table(self.header(), self.cells()), markdown_table(*self.per_seed_table())]
                           + ([markdown_table(*verdicts)] if verdicts[1] else [])
                           + [f"_{n}_" for n in self.notes()])

    def to_dict(self) -> dict:
        def acc(a: Accuracy) -> dict:
            return {"mean": a.mean, "std": a.std, "n_seeds": a.n_seeds, "n_questions": a.n_questions,
                    "per_seed": [{"seed": s, "accuracy": v} for s, v in a.per_seed.items()]}

        def dlt(d: Delta) -> dict:
            return {"delta": d.delta, "low": d.low, "high": d.high, "excludes_zero": d.excludes_zero,
                    "verdict": d.verdict,
                    "n_questions": d.n_questions, "n_seeds": d.n_seeds,
                    "interval_covers": "seeds and questions" if d.n_seeds > 1 else "questions",
                    "per_seed": [{"seed": s, "delta": v} for s, v in d.per_seed.items()]}

        return {
            "metric": self.metric, "baseline": self.baseline, "splits": self.splits, "seeds": self.seeds,
            "bootstrap": {"replicates": self.n_boot, "seed": self.boot_seed, "resamples": ["seeds", "questions"]},
            "rows": [{"method": r.method, "seeds": list(r.seeds),
                      "accuracy": {s: acc(a) for s, a in r.accuracy.items()},
                      "delta": {s: dlt(d) for s, d in r.delta.items()},
                      "selected": [{"seed": s, "selected": v} for s, v in r.selected.items()],
                      "n_sequences": list(r.n_sequences), "wall_time_s": list(r.wall_time_s)} for r in self.rows],
            "tasks": {s: {t: {m: acc(a) for m, a in pm.items()} for t, pm in tasks.items()}
                      for s, tasks in self.breakdown.items()},
        }


def _selected_text(selected: str | Mapping[str, object]) -> str:
    """{"epoch": 2, "stage": "sft"} -> "epoch=2, stage=sft"; a study's {"epochs": [{"stage": "krsl", "epoch": 1.0,
    ...}]} -> "krsl epoch 1" (the candidates' scores stay in results.json); text stays as it is."""
    if isinstance(selected, str):
        return selected
    epochs = selected.get("epochs")
    if isinstance(epochs, list) and all(isinstance(e, Mapping) and "epoch" in e for e in epochs):
        return "; ".join(f"{e.get('stage', '')} epoch {float(e['epoch']):g}".strip() for e in epochs)
    return ", ".join(f"{k}={v}" for k, v in selected.items())


def comparison_table(results: Sequence[RunResult], baseline: str | None = "std_cot", metric: Metric = "strict",
                     n_boot: int = 2000, boot_seed: int = 0) -> Comparison:
    """One row per method: accuracy per split over seeds, Δ vs the baseline with a paired bootstrap interval,
    training sequences and time; also a per-task breakdown. Files are read once here."""
    if metric not in METRICS:
        raise CotdistillError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if not results:
        raise CotdistillError("nothing to compare: no runs")
    results = [r.loaded() for r in results]
    runs = _collect(results)
    splits = _ordered_splits({r.split for r in results})
    present = baseline if any(r.method == baseline for r in results) else None
    methods = _ordered_methods(results, present)
    outcomes = {key: {seed: {p.id: p.correct(metric) for p in rows} for seed, rows in per_seed.items()}
                for key, per_seed in runs.items()}
    rows = []
    for m in methods:
        mine = [r for r in results if r.method == m]
        accuracy = {s: accuracy_over_seeds({seed: list(o.values()) for seed, o in outcomes[(m, s)].items()})
                    for s in splits if (m, s) in outcomes}
        ood = {s: {seed: list(o.values()) for seed, o in outcomes[(m, s)].items()}
               for s in _ood_benchmarks(splits) if (m, s) in outcomes}
        if OOD_AVERAGE in splits and len(ood) == len(_ood_benchmarks(splits)) and (avg := ood_average(ood)):
            accuracy[OOD_AVERAGE] = avg
        delta = {}
        if present and m != present:
            for s in splits:
                if s == OOD_AVERAGE:
                    pairs = [(outcomes[(m, b)], outcomes[(present, b)]) for b in _ood_benchmarks(splits)
                             if (m, b) in outcomes and (present, b) in outcomes]
                    d = (paired_bootstrap_mean(pairs, n_boot, boot_seed)
                         if len(pairs) == len(_ood_benchmarks(splits)) else None)
                elif (m, s) in outcomes and (present, s) in outcomes:
                    d = paired_bootstrap(outcomes[(m, s)], outcomes[(present, s)], n_boot, boot_seed)
                else:
                    d = None
                if d is not None:
                    delta[s] = d
        seeds = sorted({r.seed for r in mine}, key=_seed_key)
        selected = {r.seed: r.selected for r in sorted(mine, key=lambda r: _seed_key(r.seed))
                    if r.selected is not None}
        rows.append(ComparisonRow(m, tuple(seeds), accuracy, delta, _per_seed(mine, "n_sequences"),
                                  _per_seed(mine, "wall_time_s"), selected))
    all_seeds = sorted({r.seed for r in results if r.seed is not None})
    return Comparison(rows, splits, metric, present, baseline, all_seeds, n_boot, boot_seed,
                      _breakdown(runs, splits, methods, metric))


def _per_seed(runs: Sequence[RunResult], attr: str) -> tuple:
    """One value per seed: training happens once per (method, seed), so any split's run may carry it."""
    values: dict[Seed, float] = {}
    for r in runs:
        if getattr(r, attr) is not None:
            values.setdefault(r.seed, getattr(r, attr))
    return tuple(values.values())


def _breakdown(runs: Runs, splits: list[str], methods: list[str], metric: Metric) -> dict:
    """split -> task -> method -> accuracy over seeds on that task's questions."""
    out: dict[str, dict[str, dict[str, Accuracy]]] = {}
    for s in splits:
        tasks: dict[str, dict[str, Accuracy]] = {}
        for m in methods:
            per_task: dict[str, dict[Seed, list[bool]]] = {}
            for seed, rows in runs.get((m, s), {}).items():
                for p in rows:
                    per_task.setdefault(p.task_key, {}).setdefault(seed, []).append(p.correct(metric))
            for task, per_seed in per_task.items():
                tasks.setdefault(task, {})[m] = accuracy_over_seeds(per_seed)
        out[s] = dict(sorted(tasks.items()))
    return out


def _count_range(values: Sequence[int]) -> str:
    if not values:
        return DASH
    lo, hi = min(values), max(values)
    return f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.2f} h"


# -- rendering -----------------------------------------------------------------------------------------------


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """The first `left` columns (names) align left, the rest (numbers) right."""
    align = ["---"] * left + ["---:"] * (len(header) - left)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """As markdown_table: the first `left` columns align left (class "l")."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    td = ["<td class=\"l\">" if i < left else "<td>" for i in range(len(header))]
    body = "".join("<tr>" + "".join(f"{td[i]}{html.escape(c)}</td>" for i, c in enumerate(row)) + "</tr>\n"
                   for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else value


def bar_plot(comparison: Comparison) -> bytes:
    """A PNG: one group of bars per split, one bar per method, error bars = std over seeds."""
    from matplotlib.figure import Figure  # no pyplot: no global backend state, renders with Agg

    rows, splits = comparison.rows, comparison.splits
    width = 0.8 / max(1, len(rows))
    fig = Figure(figsize=(max(4.5, 1.0 + 0.5 * len(rows) * len(splits)), 3.6), dpi=110)
    ax = fig.add_subplot()
    for i, r in enumerate(rows):
        xs = [j - 0.4 + width * (i + 0.5) for j in range(len(splits))]
        means = [r.accuracy[s].mean if s in r.accuracy else math.nan for s in splits]
        errs = [_nan_if_none(r.accuracy[s].std) if s in r.accuracy else math.nan for s in splits]  # nan: no bar
        ax.bar(xs, means, width, yerr=errs, capsize=3, label=r.method,
               hatch="//" if r.method == TEACHER else None)
    ax.set_xticks(range(len(splits)), splits)
    ax.set_ylabel(f"{comparison.metric} accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:80em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em}
td{text-align:right;font-variant-numeric:tabular-nums}td.l{text-align:left}th{background:#f3f3f3}
.note{color:#555;font-size:.9em}img{max-width:100%}summary{cursor:pointer;padding:.2em 0}
.text{white-space:pre-wrap;text-align:left;font-family:ui-monospace,monospace;font-size:.85em;max-width:60em}
.right{color:#1a7f37}.wrong{color:#b42318}"""


@dataclass(frozen=True)
class SampledQuestion:
    """One question and each method's prediction on it, from one run per method (`answers`: method -> seed, row)."""

    split: str
    id: str
    answers: dict[str, tuple[Seed, PredictionRow]]


def sample_outputs(results: Sequence[RunResult], methods: Sequence[str], n: int = 10, sample_seed: int = 0,
                   run_seed: int | None = None) -> list[SampledQuestion]:
    """Per split, n question ids drawn without replacement (numpy generator seeded by sample_seed, the same for
    every split) from those every method's shown run answered; shown in id order.

    The shown run of a method is its run with `run_seed` when it has one, else its first seed (the teacher: its
    only run)."""
    if n < 0:
        raise CotdistillError(f"the number of sampled questions must be at least 0, got {n}")
    runs = _collect(results)
    out = []
    for split in _ordered_splits({r.split for r in results}):
        shown: dict[str, tuple[Seed, dict[str, PredictionRow]]] = {}
        for m in methods:
            per_seed = runs.get((m, split))
            if per_seed:
                seed = run_seed if run_seed in per_seed else min(per_seed, key=_seed_key)
                shown[m] = (seed, {p.id: p for p in per_seed[seed]})
        if not shown:
            continue
        ids = sorted(set.intersection(*(set(rows) for _, rows in shown.values())))
        picked = np.random.default_rng(sample_seed).choice(len(ids), size=min(n, len(ids)), replace=False)
        out += [SampledQuestion(split, ids[i], {m: (seed, rows[ids[i]]) for m, (seed, rows) in shown.items()})
                for i in sorted(picked)]
    return out


def _grade(answer: str | None, correct: bool) -> str:
    mark = "<span class=\"right\">✓</span>" if correct else "<span class=\"wrong\">✗</span>"
    return f"{html.escape(answer) if answer is not None else '(none)'} {mark}"


def render_side_by_side(samples: Sequence[SampledQuestion], metric: Metric) -> str:
    """One collapsible block per question: the question, the gold answer, each method's output and grades."""
    parts = []
    for q in samples:
        first = next(iter(q.answers.values()))[1]
        marks = " · ".join(f"{html.escape(m)} {'✓' if row.correct(metric) else '✗'}"
                           for m, (_, row) in q.answers.items())
        body = "".join(
            f"<tr><td class=\"l\">{html.escape(m)} (seed {DASH if seed is None else seed})</td>"
            f"<td>{_grade(row.strict, row.strict_correct)}</td><td>{_grade(row.flexible, row.flexible_correct)}</td>"
            f"<td class=\"text\">{html.escape(row.output)}</td></tr>\n" for m, (seed, row) in q.answers.items())
        question = html.escape(first.question) if first.question else "(the predictions do not record the question)"
        parts.append(
            f"<details class=\"sample\"><summary>{html.escape(q.split)} · {html.escape(first.task_key)} · "
            f"{html.escape(q.id)} — {metric}: {marks}</summary>\n<div class=\"text\">{question}</div>\n"
            f"<p>gold: <b>{html.escape(first.gold)}</b></p>\n<table><thead><tr><th>method (seed)</th>"
            f"<th>strict answer</th><th>flexible answer</th><th>output</th></tr></thead>\n<tbody>\n{body}"
            "</tbody></table></details>")
    return "\n".join(parts)


def environment_lines(environments: Sequence[Mapping[str, Any] | None]) -> list[str]:
    """The report's "Environment" section: each distinct recorded environment in a few lines (a result is
    reproducible only with the same libraries and kernels), and a warning when the runs come from several."""
    from .environment import summary_lines

    distinct = [e for i, e in enumerate(environments) if e is not None and e not in environments[:i]]
    lines = ["Not recorded for some or all runs (no environment given, or a manifest written before "
             "environments were recorded)."] if None in environments or not environments else []
    if len(distinct) > 1:
        lines.append(f"These runs were made in {len(distinct)} different environments; "
                     "their differences may come from the environment.")
    for n, env in enumerate(distinct, 1):
        prefix = f"({n}) " if len(distinct) > 1 else ""
        lines += [prefix + line for line in summary_lines(env)]
    return lines


def render_html(comparisons: Sequence[Comparison], png: bytes, title: str,
                samples: Sequence[SampledQuestion] = (), environment: Sequence[str] = ()) -> str:
    """A self-contained page: per metric the table, its per-seed values and notes (the plot after the first),
    the first comparison's per-task breakdown, the sampled questions' outputs side by side, and the
    environment the runs were made in."""
    main = comparisons[0]
    parts = [f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    for c in comparisons:
        parts += [f"<h2>{html.escape(c.metric)} accuracy</h2>", html_table(c.header(), c.cells()),
                  f"<h3>{html.escape(c.metric)} accuracy per seed</h3>", html_table(*c.per_seed_table())]
        parts += [f"<p class=\"note\">{html.escape(n)}</p>" for n in c.notes()]
        if c is main:
            parts.append(f"<img alt=\"{html.escape(main.metric)} accuracy by method and split\" "
                         f"src=\"data:image/png;base64,{base64.b64encode(png).decode('ascii')}\">")
    parts += [f"<h2>Per task ({html.escape(main.metric)} accuracy, mean ± std over seeds)</h2>",
              html_table(*main.breakdown_table(), left=2)]
    if samples:
        parts += ["<h2 id=\"outputs\">Outputs side by side</h2>",
                  f"<p class=\"note\">{len(samples)} sampled questions (click one to open it): each method's output "
                  "from one run, its extracted answers and grades (✓ right, ✗ wrong).</p>",
                  render_side_by_side(samples, main.metric)]
    if environment:
        parts += ["<h2>Environment</h2>", *(f"<p class=\"note\">{html.escape(line)}</p>" for line in environment)]
    parts.append("</body></html>\n")
    return "\n".join(parts)


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    json: Path
    png: Path
    html: Path


def write_report(results: Sequence[RunResult], out_dir: str | os.PathLike, baseline: str | None = "std_cot",
                 metric: Metric = "strict", n_boot: int = 2000, boot_seed: int = 0,
                 title: str = "cotdistill: method comparison", n_samples: int = 10, sample_seed: int = 0,
                 sample_run_seed: int | None = None,
                 environments: Sequence[Mapping[str, Any] | None] = ()) -> tuple[Comparison, ReportFiles]:
    """Write comparison.md, comparison.json, accuracy.png and report.html into out_dir (each atomically).

    The chosen metric leads; the other extraction rule's table follows, since extraction can move accuracy a lot.
    The HTML page also shows n_samples questions per split side by side (see sample_outputs). `environments` are
    the manifests' recorded environments (environment.describe()), shown at the end.
    """
    results = [r.loaded() for r in results]
    comparisons = [comparison_table(results, baseline, m, n_boot, boot_seed)
                   for m in [metric] + [m for m in METRICS if m != metric]]
    main = comparisons[0]
    samples = sample_outputs(results, [r.method for r in main.rows], n_samples, sample_seed, sample_run_seed)
    png = bar_plot(main)
    out = Path(out_dir)
    files = ReportFiles(out / "comparison.md", out / "comparison.json", out / "accuracy.png", out / "report.html")
    md = [f"# {title}", ""]
    for c in comparisons:
        md += [f"## {c.metric} accuracy", "", c.to_markdown(), ""]
    md += [f"## Per task ({metric} accuracy)", "", markdown_table(*main.breakdown_table(), left=2), ""]
    environment = environment_lines(list(environments))
    md += ["## Environment", "", *(f"- {line}" for line in environment), ""]
    atomic_write_text(files.markdown, "\n".join(md))
    atomic_write_text(files.json, json.dumps({c.metric: c.to_dict() for c in comparisons}, indent=2) + "\n")
    atomic_write_bytes(files.png, png)
    atomic_write_text(files.html, render_html(comparisons, png, title, samples, environment))
    return main, files


# -- results manifest ----------------------------------------------------------------------------------------


class ManifestRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: str = Field(min_length=1)
    seed: int | None = None
    split: str = Field(min_length=1)
    predictions: str = Field(min_length=1)  # relative paths are relative to the manifest's folder
    n_sequences: int | None = Field(default=None, ge=0)
    wall_time_s: float | None = Field(default=None, ge=0)
    selected: str | dict[str, Any] | None = None  # the checkpoint a validation split chose, when one did


class Manifest(BaseModel):
    """results.json: what `cotdistill report` rebuilds a report from."""

    model_config = ConfigDict(extra="forbid")

    runs: list[ManifestRun] = Field(min_length=1)
    baseline: str | None = "std_cot"
    metric: Metric = "strict"
    title: str = "cotdistill: method comparison"
    environment: dict[str, Any] | None = None  # environment.describe() of the process that wrote it


def _loc(loc: Sequence[str | int]) -> str:
    """("runs", 2, "seed") -> "runs[2].seed"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_manifest(path: str | os.PathLike) -> tuple[Manifest, list[RunResult]]:
    """Read and check a manifest (a bare JSON list is taken as its runs); errors name the file and the field."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise CotdistillError(f"{p}: cannot read results manifest: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise CotdistillError(f"{p}:{e.lineno}: invalid JSON: {e.msg}") from None
    if isinstance(data, list):
        data = {"runs": data}
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        raise CotdistillError(f"{p}: field '{_loc(first['loc']) or '(top level)'}': {first['msg']}") from None
    results = []
    for i, run in enumerate(manifest.runs):
        file = Path(run.predictions)
        file = file if file.is_absolute() else p.parent / file
        if not file.is_file():
            raise CotdistillError(f"{p}: field 'runs[{i}].predictions': no such file {file}")
        results.append(RunResult(run.method, run.seed, run.split, file, run.n_sequences, run.wall_time_s,
                                 run.selected))
    return manifest, results


def write_manifest(path: str | os.PathLike, results: Sequence[RunResult], baseline: str | None = "std_cot",
                   metric: Metric = "strict", title: str = "cotdistill: method comparison",
                   environment: dict[str, Any] | None = None) -> None:
    """Write results.json for runs whose predictions are files, with paths relative to the manifest's folder,
    and the environment they were made in (default: this process's, environment.describe())."""
    from .environment import describe

    p = Path(path)
    runs = []
    for r in results:
        if not isinstance(r.predictions, (str, os.PathLike)):
            raise CotdistillError(f"run {r.method!r} seed {r.seed} {r.split}: a manifest needs a predictions file")
        rel = os.path.relpath(Path(r.predictions).resolve(), p.parent.resolve())
        runs.append(ManifestRun(method=r.method, seed=r.seed, split=r.split, predictions=rel,
                                n_sequences=r.n_sequences, wall_time_s=r.wall_time_s,
                                selected=dict(r.selected) if isinstance(r.selected, Mapping) else r.selected))
    manifest = Manifest(runs=runs, baseline=baseline, metric=metric, title=title,
                        environment=environment if environment is not None else describe())
    atomic_write_text(p, json.dumps(manifest.model_dump(), indent=2, ensure_ascii=False) + "\n")


def archive_predictions(results: Sequence[RunResult], out: str | os.PathLike) -> list[RunResult]:
    """Copy each run's predictions into out/predictions/METHOD/SEED/SPLIT.jsonl.gz (gzip without a timestamp, so
    the same rows give the same bytes) and return the runs pointing at the copies."""
    archived = []
    for r in results:
        path = Path(out) / "predictions" / r.method / ("none" if r.seed is None else str(r.seed)) / f"{r.split}.jsonl.gz"
        write_jsonl(path, r.rows())
        archived.append(replace(r, predictions=path))
    return archived


# -- the `cotdistill report` command -------------------------------------------------------------------------


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", metavar="RUN_DIR_OR_MANIFEST",
                        help=f"a run folder holding {MANIFEST_NAME}, or a results manifest JSON; several are merged "
                             "(e.g. two studies that share a run folder)")
    parser.add_argument("--out", help="report folder (default: the manifest's own folder when it holds a report, "
                                      "as a study's report/ does, else report/ beside it; several sources need it)")
    parser.add_argument("--with-predictions", action="store_true",
                        help="also copy every run's predictions (gzipped) into the report folder and write its "
                             f"{MANIFEST_NAME} there, so the report can be rebuilt or merged from that folder alone")
    parser.add_argument("--metric", choices=METRICS, help="the leading metric (default: the manifest's, or strict)")
    parser.add_argument("--baseline", help="the method Δ is taken against (default: the manifest's, or std_cot)")
    parser.add_argument("--bootstrap", type=int, default=2000, metavar="B", help="bootstrap replicates (2000)")
    parser.add_argument("--bootstrap-seed", type=int, default=0, help="the bootstrap's RNG seed (0)")
    parser.add_argument("--samples", type=int, default=10, metavar="N",
                        help="questions per split whose outputs report.html shows side by side (10; 0: none)")
    parser.add_argument("--sample-seed", type=int, default=0, help="the RNG seed that picks those questions (0)")
    parser.add_argument("--sample-run-seed", type=int, metavar="SEED",
                        help="show the runs trained with this seed (default: each method's first seed)")


def report_command(args: argparse.Namespace) -> int:
    """Rebuild the report from one or more manifests and print its table."""
    if len(args.sources) > 1 and not args.out:  # a default would overwrite one of the merged reports
        raise CotdistillError("merging several manifests needs --out DIR, a folder for the merged report")
    results: list[RunResult] = []
    environments: list[dict[str, Any] | None] = []
    seen: set[tuple] = set()
    baseline: str | None = None  # the first one a manifest names: a part of new rows only still names its baseline
    for i, source in enumerate(map(Path, args.sources)):
        path = source / MANIFEST_NAME if source.is_dir() else source
        if not path.exists():
            raise CotdistillError(f"{path}: no such results manifest")
        loaded, runs = load_manifest(path)
        if i == 0:
            manifest, manifest_path = loaded, path
        baseline = baseline or loaded.baseline
        environments.append(loaded.environment)
        for run in runs:  # a run two manifests share (the same baseline, say) counts once
            key = (run.method, run.seed, run.split)
            if key not in seen:
                seen.add(key)
                results.append(run)
    here = manifest_path.parent
    out = Path(args.out) if args.out else here if (here / "comparison.md").exists() else here / "report"
    comparison, files = write_report(results, out, baseline=args.baseline or baseline,
                                     metric=args.metric or manifest.metric, n_boot=args.bootstrap,
                                     boot_seed=args.bootstrap_seed, title=manifest.title, n_samples=args.samples,
                                     sample_seed=args.sample_seed, sample_run_seed=args.sample_run_seed,
                                     environments=environments)
    if args.with_predictions:
        write_manifest(out / MANIFEST_NAME, archive_predictions(results, out), baseline=comparison.requested_baseline,
                       metric=comparison.metric, title=manifest.title,
                       environment=next((e for e in environments if e is not None), None))
    print(comparison.to_markdown())
    print(f"\nreport: {files.html}\n        {files.markdown}\n        {files.png}\n        {files.json}")
    return 0
