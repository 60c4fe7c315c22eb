"""Grader calibration: our strict and flexible rules on code-davinci-002's BBH chain-of-thought outputs.

The BBH release (suzgunmirac/BIG-Bench-Hard) ships Codex's 3-shot CoT output for each of its 6,511 questions
(`<task>_few_shot_template_0-255000.json`, {"outputs": [{"input", "prediction", "target"}]}) and the official
accuracy per task (`..._eval_metrics.jsonl`). For every task this prints, as a markdown table, how many outputs
each rule scores correct:

* official: the BBH authors' rule, as the data README states it: the text after the last "the answer is ",
  stripped, one final "." dropped, compared exactly with the target;
* published: the task's accuracy from its `_eval_metrics.jsonl` file, as a count;
* strict / flexible: `cotdistill.grading.grade` on an Example whose answer format fits the task;
* lm-eval: lm-evaluation-harness's `bbh_cot_fewshot` rule (described at `lm_eval_cot_fewshot_answer`).

tests/test_grading_calibration.py checks the same data and docs/grading.md shows this script's table.
Usage: python bench/grading_calibration.py [DIR]  (default: $COTDISTILL_DATA/bbh/codex-cot, else the first
shared/data/bbh/codex-cot above this file)
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cotdistill.data.bbh import LABELS, answer_format
from cotdistill.grading import grade
from cotdistill.records import Example
from cotdistill.teachers.importing import question_of_release_input

OUTPUTS_SUFFIX = "_few_shot_template_0-255000.json"
METRICS_SUFFIX = "_few_shot_template_0-255000_eval_metrics.jsonl"

# Choice tasks take their options from the question itself (lines "(A) ..."); other formats come from the loader.
_OPTION_LINE = re.compile(r"^\([A-Z]\) (.*)$", re.MULTILINE)

# lm-evaluation-harness, bbh/cot_fewshot (template v4.0): generation stops at the first of these strings.
LM_EVAL_STOPS = ("</s>", "Q", "\n\n")
# Its "get-answer" filter: after a lower-case "the answer is ", everything on that line but the last character.
_LM_EVAL_ANSWER = re.compile(r"(?<=the answer is )(.*)(?=.)")


def default_dir() -> Path | None:
    """Where Codex's outputs are: $COTDISTILL_DATA/bbh/codex-cot, else shared/data/bbh/codex-cot above here."""
    env = os.environ.get("COTDISTILL_DATA")
    candidates = [Path(env)] if env else [p / "shared" / "data" for p in Path(__file__).resolve().parents]
    for root in candidates:
        if (root / "bbh" / "codex-cot").is_dir():
            return root / "bbh" / "codex-cot"
    return None


def example_for(task: str, index: int, prompt: str, target: str) -> Example:
    """The Example our grader needs: the file's target as gold, the task's format, its options or labels."""
    question = question_of_release_input(prompt) or prompt
    fmt = answer_format(task)
    choices = LABELS.get(task, []) if fmt == "label" else _OPTION_LINE.findall(question) if fmt == "choice" else []
    return Example(id=f"{task}/{index}", task=task, question=question, answer=target, answer_format=fmt,
                   choices=choices)


def official_answer(prediction: str) -> str:
    """The BBH authors' extraction: after the last "the answer is ", stripped, one final period dropped."""
    start = prediction.rfind("the answer is ")
    answer = (prediction[start + len("the answer is ") :] if start >= 0 else prediction).strip()
    return answer[:-1] if answer.endswith(".") else answer


def lm_eval_cot_fewshot_answer(prediction: str) -> str:
    """What lm-evaluation-harness's bbh_cot_fewshot task extracts from a generation, "[invalid]" for nothing.

    The generation is cut at the first stop string ("</s>", "Q", a blank line); the first match of its regex
    (lower-case "the answer is ", then the rest of that line minus its last character) is stripped; the
    metric then compares it with the target exactly, case and punctuation included.
    """
    for stop in LM_EVAL_STOPS:
        cut = prediction.find(stop)
        if cut >= 0:
            prediction = prediction[:cut]
    found = _LM_EVAL_ANSWER.findall(prediction)
    return found[0].strip() if found else "[invalid]"


@dataclass(frozen=True)
class CodexOutput:
    task: str
    index: int
    prompt: str
    prediction: str
    target: str


@dataclass(frozen=True)
class Scored:
    """One output and whether each rule scores it correct."""

    output: CodexOutput
    official: bool
    strict: bool
    flexible: bool
    lm_eval: bool


@dataclass
class TaskCounts:
    """Correct outputs of one task under each rule."""

    n: int = 0
    published: int = 0
    official: int = 0
    strict: int = 0
    flexible: int = 0
    lm_eval: int = 0


def codex_outputs(root: Path) -> Iterator[CodexOutput]:
    for path in sorted(root.glob(f"*{OUTPUTS_SUFFIX}")):
        task = path.name[: -len(OUTPUTS_SUFFIX)]
        for index, row in enumerate(json.loads(path.read_text(encoding="utf-8"))["outputs"]):
            yield CodexOutput(task, index, row["input"], row["prediction"], row["target"])


def published_correct(root: Path, task: str, n: int) -> int:
    """The task's published accuracy (a percentage of its n outputs) as a count of correct outputs."""
    metrics = json.loads((root / f"{task}{METRICS_SUFFIX}").read_text(encoding="utf-8").splitlines()[0])
    return round(metrics["accuracy"] * n / 100)


def score(root: Path) -> list[Scored]:
    """Every output in `root` scored by every rule."""
    scored = []
    for out in codex_outputs(root):
        graded = grade(out.prediction, example_for(out.task, out.index, out.prompt, out.target))
        scored.append(Scored(out, official_answer(out.prediction) == out.target, graded.strict_correct,
                             graded.flexible_correct, lm_eval_cot_fewshot_answer(out.prediction) == out.target))
    return scored


def per_task(root: Path, scored: list[Scored]) -> dict[str, TaskCounts]:
    counts: dict[str, TaskCounts] = {}
    for s in scored:
        row = counts.setdefault(s.output.task, TaskCounts())
        row.n += 1
        row.official += s.official
        row.strict += s.strict
        row.flexible += s.flexible
        row.lm_eval += s.lm_eval
    for task, row in counts.items():
        row.published = published_correct(root, task, row.n)
    return counts


def lm_eval_loss_cause(prediction: str) -> str | None:
    """Why lm-eval's rule misses an answer the official rule reads, or None if nothing in its rule explains it.

    "stop string": the generation would have ended (at a "Q" inside a name or the answer "(Q)", or a blank
    line) before its answer sentence did; "last character": the answer line has no final period, so the
    character the regex drops belongs to the answer; "first match": an earlier "the answer is" wins.
    """
    start = prediction.rfind("the answer is ")
    if start < 0:
        return None
    line_end = prediction.find("\n", start)
    answer_line = prediction[start : len(prediction) if line_end < 0 else line_end].rstrip()
    if any(0 <= prediction.find(stop) < start + len(answer_line) for stop in LM_EVAL_STOPS):
        return "stop string"
    if not answer_line.endswith("."):
        return "last character"
    return "first match" if prediction.find("the answer is ") < start else None


def markdown_table(counts: dict[str, TaskCounts]) -> str:
    """Accuracy (%) per task under each rule, and the correct counts over all tasks."""
    rules = ("published", "official", "strict", "flexible", "lm_eval")
    lines = ["| task | n | published | official rule | ours strict | ours flexible | lm-eval cot_fewshot |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for task, row in sorted(counts.items()):
        cells = " | ".join(f"{100 * getattr(row, rule) / row.n:.1f}" for rule in rules)
        lines.append(f"| {task} | {row.n} | {cells} |")
    n = sum(row.n for row in counts.values())
    totals = " | ".join(str(sum(getattr(row, rule) for row in counts.values())) for rule in rules)
    lines.append(f"| all {len(counts)} tasks, correct outputs | {n} | {totals} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else default_dir()
    if root is None or not root.is_dir():
        print("Codex's BBH outputs not found: pass their folder or set COTDISTILL_DATA", file=sys.stderr)
        return 2
    scored = score(root)
    print(markdown_table(per_task(root, scored)))
    disagree = [f"{s.output.task}/{s.output.index}" for s in scored if s.strict != s.official]
    print(f"\noutputs where ours-strict and the official rule disagree: {', '.join(disagree) or 'none'}")
    causes = Counter(lm_eval_loss_cause(s.output.prediction) for s in scored if s.lm_eval != s.official)
    print(f"outputs where lm-eval's rule and the official rule disagree, by cause: {dict(causes)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
