"""The teacher's own accuracy, as a row of the comparison table (the ceiling a distilled student aims at).

Scored on the teacher's first sample per question (lowest sample_index of origin "teacher"), re-graded with both
extraction rules so the row is comparable with every student row; a question with no teacher rationale counts
as wrong and is reported in "missing". The shape is evaluate.compute_metrics's (per benchmark, per task).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..evaluate import benchmark_of, compute_metrics
from ..grading import grade
from ..records import Example, Rationale


def teacher_accuracy(examples: Sequence[Example], rationales: Sequence[Rationale]) -> dict:
    """{"benchmarks": {name: {n, strict, flexible, truncated}}, "tasks": {...}, "overall": {...}, "missing": k}."""
    first: dict[str, Rationale] = {}
    for r in rationales:
        if r.origin != "teacher":
            continue  # rectified or corrupted CoTs were written with hints: not the teacher's own answer
        held = first.get(r.example_id)
        if held is None or r.sample_index < held.sample_index:
            first[r.example_id] = r
    predictions, missing = [], 0
    for ex in examples:
        r = first.get(ex.id)
        missing += r is None
        g = grade(r.text, ex) if r is not None else None
        predictions.append({
            "id": ex.id, "task": ex.task, "benchmark": benchmark_of(ex),
            "strict_correct": bool(g and g.strict_correct), "flexible_correct": bool(g and g.flexible_correct),
            "finish_reason": "length" if r is not None and r.truncated else "stop",
        })
    metrics = compute_metrics(predictions)
    overall = compute_metrics([{**p, "benchmark": "all", "task": "all"} for p in predictions])["benchmarks"]
    metrics["overall"] = overall.get("all", {"n": 0, "strict": 0.0, "flexible": 0.0, "truncated": 0})
    metrics["missing"] = missing
    return metrics
