"""Choosing a study's row (a schedule, a variant) on the validation split, never on a test split.

A study with `report_validation: true` evaluates every trained student on its validation split too and writes
those results to validation.json beside results.json (same manifest format, split "validation"); the report
never shows them. `cotdistill pick` reads validation.json and names the row with the best mean strict accuracy
over seeds (the earlier row in the config wins a tie, so list the base setting first); the test splits of that
row are then read from the report as they stand, unchosen.
"""

from __future__ import annotations

import argparse
import fnmatch
from collections.abc import Sequence
from pathlib import Path

from .errors import CotdistillError
from .report import Comparison, RunResult, comparison_table, load_manifest

VALIDATION_MANIFEST = "validation.json"


def best_on_validation(results: Sequence[RunResult], among: Sequence[str] = (),
                       baseline: str | None = None) -> tuple[Comparison, str]:
    """The validation comparison of the rows matching `among` (shell patterns; empty: every row) and the row
    with the highest mean strict accuracy over its seeds; ties go to the row given first."""
    splits = {r.split for r in results}
    if splits != {"validation"}:
        raise CotdistillError(f"choosing reads validation results only; got splits {sorted(splits)}")
    chosen = [r for r in results if not among or any(fnmatch.fnmatchcase(r.method, p) for p in among)]
    if not chosen:
        raise CotdistillError(f"no row matches {list(among)}; rows: {sorted({r.method for r in results})}")
    comparison = comparison_table(chosen, baseline=baseline, metric="strict")
    order = list(dict.fromkeys(r.method for r in chosen))  # config order, whatever the table puts first
    rows = {row.method: row for row in comparison.rows}
    winner = max(order, key=lambda m: (rows[m].accuracy["validation"].mean, -order.index(m)))
    return comparison, winner


def add_pick_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="REPORT_DIR_OR_MANIFEST",
                        help=f"a study's report folder holding {VALIDATION_MANIFEST} (study.report_validation: true), "
                             "or that file")
    parser.add_argument("--among", nargs="+", default=[], metavar="PATTERN",
                        help="choose among the rows matching these shell patterns (e.g. 'edit_*'); default: all")


def pick_command(args: argparse.Namespace) -> int:
    source = Path(args.source)
    path = source / VALIDATION_MANIFEST if source.is_dir() else source
    if not path.exists():
        raise CotdistillError(f"{path}: no validation results; run the study with study.report_validation: true")
    manifest, results = load_manifest(path)
    comparison, winner = best_on_validation(results, args.among, manifest.baseline)
    print(comparison.to_markdown())
    best = next(r for r in comparison.rows if r.method == winner).accuracy["validation"]
    print(f"\nchosen on validation: {winner} ({best.mean:.1f}% strict, mean of {best.n_seeds} seed(s))")
    return 0
