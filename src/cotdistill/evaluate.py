"""Evaluate a student: batched generation, strict and flexible grading, per-task and per-benchmark accuracy.

Predictions are journaled batch by batch, so an interrupted evaluation resumes without regenerating what it
already has; the final predictions.jsonl and metrics.json are written atomically at the end.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm import tqdm

from .config import EvalConfig
from .data import benchmark_label, benchmark_of
from .generation import Generated, generate_texts
from .grading import grade
from .prompting import student_prompt
from .records import Example, JsonlJournal, atomic_write_text, write_jsonl

PARTIAL = "predictions.partial.jsonl"


def majority_vote(answers: Sequence[str | None]) -> str | None:
    """The most frequent extracted answer (ties go to the one seen first); None if nothing was extracted."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == best)


def score(example: Example, generations: Sequence[Generated]) -> dict:
    """One prediction record: the first generation's text, and the (voted) strict and flexible answers."""
    grades = [grade(g.text, example) for g in generations]
    strict = majority_vote([g.strict for g in grades])
    flexible = majority_vote([g.flexible for g in grades])
    record = {
        "id": example.id,
        "task": example.task,
        "benchmark": benchmark_of(example),
        "question": example.question,  # so a report can show it beside each method's output
        "gold": example.answer,
        "output": generations[0].text,
        "finish_reason": generations[0].finish_reason,
        "strict": strict,
        "flexible": flexible,
        "strict_correct": strict is not None and any(g.strict == strict and g.strict_correct for g in grades),
        "flexible_correct": flexible is not None
        and any(g.flexible == flexible and g.flexible_correct for g in grades),
    }
    if len(generations) > 1:
        record["samples"] = [{"output": g.text, "strict": r.strict, "flexible": r.flexible} for g, r in zip(generations, grades)]
    return record


def compute_metrics(predictions: Sequence[dict]) -> dict:
    """Micro-averaged accuracy per task and per benchmark, under both extraction rules."""

    def summary(rows: list[dict]) -> dict:
        n = len(rows)
        return {
            "n": n,
            "strict": sum(r["strict_correct"] for r in rows) / n if n else 0.0,
            "flexible": sum(r["flexible_correct"] for r in rows) / n if n else 0.0,
            "truncated": sum(r["finish_reason"] == "length" for r in rows),
        }

    by_task: dict[tuple[str, str], list[dict]] = defaultdict(list)
    by_bench: dict[str, list[dict]] = defaultdict(list)
    for p in predictions:
        by_task[(p["benchmark"], p["task"])].append(p)
        by_bench[p["benchmark"]].append(p)
    benchmarks = {b: summary(rows) for b, rows in sorted(by_bench.items())}
    out = {"benchmarks": benchmarks, "tasks": {f"{b}/{t}": summary(rows) for (b, t), rows in sorted(by_task.items())}}
    if len(benchmarks) > 1:  # EDIT's "Avg": each benchmark counts once, whatever its size
        out["benchmark_mean"] = {rule: sum(m[rule] for m in benchmarks.values()) / len(benchmarks)
                                 for rule in ("strict", "flexible")}
    return out


def metrics_table(metrics: dict) -> str:
    """A Markdown table: one row per task, then one per benchmark."""
    lines = ["| task | n | strict | flexible |", "|---|---:|---:|---:|"]
    for name, m in metrics["tasks"].items():
        lines.append(f"| {name} | {m['n']} | {100 * m['strict']:.1f} | {100 * m['flexible']:.1f} |")
    for name, m in metrics["benchmarks"].items():
        label = benchmark_label(name)
        lines.append(f"| **{label} (all)** | {m['n']} | **{100 * m['strict']:.1f}** | **{100 * m['flexible']:.1f}** |")
    if "benchmark_mean" in metrics:
        m = metrics["benchmark_mean"]
        lines.append(f"| **mean of the {len(metrics['benchmarks'])} benchmarks** | – | **{100 * m['strict']:.1f}** | "
                     f"**{100 * m['flexible']:.1f}** |")
    return "\n".join(lines)


def evaluate(model, tokenizer, examples: Sequence[Example], cfg: EvalConfig, out_dir: Path, seed: int = 0,
             prompt_of: Callable[[Example], str] | None = None) -> dict:
    """Generate, grade and score `examples`; writes predictions.jsonl and metrics.json into out_dir.

    `prompt_of` replaces the student prompt for methods that train under their own prompt (a task prefix)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    journal = JsonlJournal(out_dir / PARTIAL)
    done = {r["id"]: r for r in journal.load()}
    todo = [e for e in examples if e.id not in done]
    prompts = [prompt_of(e) if prompt_of else student_prompt(e, cfg.prompt_style, tokenizer) for e in todo]
    k = cfg.self_consistency
    with tqdm(total=len(examples), initial=len(examples) - len(todo), desc="evaluate", unit="q") as bar, journal:

        def keep(indices: list[int], batch: list[list[Generated]]) -> None:
            for i, gens in zip(indices, batch):
                record = score(todo[i], gens)
                journal.append(record)
                done[record["id"]] = record
            bar.update(len(indices))

        generate_texts(
            model,
            tokenizer,
            prompts,
            max_new_tokens=cfg.max_new_tokens,
            stop=cfg.stop,
            batch_size=max(1, cfg.batch_size // k),
            num_samples=k,
            temperature=cfg.temperature if k > 1 else 0.0,
            top_p=cfg.top_p,
            seed=seed,
            on_batch=keep,
            stop_after_answer=cfg.stop_after_answer,
            progress=True,
        )
    predictions = [done[e.id] for e in examples]
    metrics = compute_metrics(predictions)
    write_jsonl(out_dir / "predictions.jsonl", predictions)
    import json

    atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2))
    (out_dir / PARTIAL).unlink(missing_ok=True)
    return metrics
