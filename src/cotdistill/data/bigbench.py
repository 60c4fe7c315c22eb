"""BBH and BB-sub, built from the task JSONs inside the `bigbench==1.0.0` sdist.

The sdist is fetched once from the package registry into the cache (never installed: its dependencies pin
old TensorFlow) and its `task.json` files are extracted once into the cache, so later loads read plain JSON.
`pip download --no-deps` cannot fetch it, because pip builds the sdist's metadata and that step rejects its
`file://` dependency on bleurt, so we read the registry's simple index (PEP 691 JSON) ourselves and check the
sha256 it publishes.

BBH (Suzgun et al.) is 27 subtasks drawn from 23 BIG-bench tasks, reformatted as questions with lettered
options. We rebuild that format from the BIG-bench examples, sample at most 250 per subtask with a fixed seed,
and split each subtask 4:1 into train and test as EDIT does. Three BBH tasks exist in BIG-bench only as
programs (task.py); their examples come from the lab's generators when the lab is installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from ..errors import CotdistillError
from ..grading import option_label
from ..paths import cache_dir
from ..records import Example, atomic_write_text

SDIST_NAME = "bigbench-1.0.0.tar.gz"
SDIST_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
TASKS_PREFIX = "bigbench-1.0.0/bigbench/benchmark_tasks/"
DEFAULT_INDEX = "https://pypi.org/simple"

BBH_MAX_PER_TASK = 250
BBSUB_MAX_PER_TASK = 100
TRAIN_SHARE = 0.8  # EDIT splits every BBH subtask train:test = 4:1
DEFAULT_SEED = 0

Kind = Literal["choice", "label", "number", "text"]


@dataclass(frozen=True)
class BBHSubtask:
    name: str
    source: str | None  # task folder under benchmark_tasks; None where BIG-bench has only a task.py
    kind: Kind
    shuffle_options: bool = True  # BIG-bench often lists the right option first


BBH_SUBTASKS: dict[str, BBHSubtask] = {
    s.name: s
    for s in [
        BBHSubtask("boolean_expressions", None, "label"),
        BBHSubtask("causal_judgement", "causal_judgment", "label"),
        BBHSubtask("date_understanding", "date_understanding", "choice"),
        BBHSubtask("disambiguation_qa", "disambiguation_qa", "choice"),
        BBHSubtask("dyck_languages", "dyck_languages", "text"),
        BBHSubtask("formal_fallacies", "formal_fallacies_syllogisms_negation", "label"),
        BBHSubtask("geometric_shapes", "geometric_shapes", "choice", shuffle_options=False),
        BBHSubtask("hyperbaton", "hyperbaton", "choice", shuffle_options=False),
        BBHSubtask("logical_deduction_five_objects", "logical_deduction/five_objects", "choice"),
        BBHSubtask("logical_deduction_seven_objects", "logical_deduction/seven_objects", "choice"),
        BBHSubtask("logical_deduction_three_objects", "logical_deduction/three_objects", "choice"),
        BBHSubtask("movie_recommendation", "movie_recommendation", "choice"),
        BBHSubtask("multistep_arithmetic_two", None, "number"),
        BBHSubtask("navigate", "navigate", "label"),
        BBHSubtask("object_counting", "object_counting", "number"),
        BBHSubtask("penguins_in_a_table", "penguins_in_a_table", "choice"),
        BBHSubtask("reasoning_about_colored_objects", "reasoning_about_colored_objects", "choice"),
        BBHSubtask("ruin_names", "ruin_names", "choice"),
        BBHSubtask("salient_translation_error_detection", "salient_translation_error_detection", "choice"),
        BBHSubtask("snarks", "snarks", "choice", shuffle_options=False),
        BBHSubtask("sports_understanding", "sports_understanding", "label"),
        BBHSubtask("temporal_sequences", "temporal_sequences", "choice"),
        BBHSubtask("tracking_shuffled_objects_five_objects", "tracking_shuffled_objects/five_objects", "choice"),
        BBHSubtask("tracking_shuffled_objects_seven_objects", "tracking_shuffled_objects/seven_objects", "choice"),
        BBHSubtask("tracking_shuffled_objects_three_objects", "tracking_shuffled_objects/three_objects", "choice"),
        BBHSubtask("web_of_lies", None, "label"),
        BBHSubtask("word_sorting", "word_sorting", "text"),
    ]
}
BBH_SOURCE_TASKS = {s.source.split("/")[0] for s in BBH_SUBTASKS.values() if s.source} | {
    "boolean_expressions",
    "multistep_arithmetic",
    "web_of_lies",
}

# Binary BBH subtasks answer with words rather than letters; BIG-bench's labels map onto BBH's.
_LABELS: dict[str, dict[str, str]] = {
    "causal_judgement": {"Yes": "Yes", "No": "No"},
    "formal_fallacies": {"valid": "valid", "invalid": "invalid"},
    "navigate": {"True": "Yes", "False": "No"},
    "sports_understanding": {"plausible": "yes", "implausible": "no"},
}


# ---------------------------------------------------------------------------------------------- fetching


def _simple_index_url() -> str:
    return os.environ.get("PIP_INDEX_URL", DEFAULT_INDEX).rstrip("/")


def _sdist_url() -> str:
    request = urllib.request.Request(
        f"{_simple_index_url()}/bigbench/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    for entry in files:
        if entry["filename"] == SDIST_NAME:
            return entry["url"]
    raise CotdistillError(f"the package index {_simple_index_url()} does not list {SDIST_NAME}")


def fetch_sdist(dest_dir: Path) -> Path:
    """Download the bigbench sdist into dest_dir (once), checking its sha256."""
    from tqdm import tqdm

    target = dest_dir / SDIST_NAME
    if target.exists():
        return target
    dest_dir.mkdir(parents=True, exist_ok=True)
    url = _sdist_url()
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=dest_dir, suffix=".part")
    try:
        with urllib.request.urlopen(url, timeout=120) as response, os.fdopen(fd, "wb") as out:
            total = int(response.headers.get("Content-Length", 0)) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"fetching {SDIST_NAME}") as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if digest.hexdigest() != SDIST_SHA256:
            raise CotdistillError(f"{url}: sha256 mismatch (got {digest.hexdigest()})")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def tasks_dir() -> Path:
    """The folder of extracted BIG-bench task JSONs, fetching and extracting them on first use."""
    root = cache_dir() / "bigbench-1.0.0"
    tasks = root / "benchmark_tasks"
    if tasks.is_dir():
        return tasks
    sdist = fetch_sdist(root)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".extract-"))
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            for member in tar:
                if member.isfile() and member.name.startswith(TASKS_PREFIX) and member.name.endswith("task.json"):
                    out = staging / member.name[len(TASKS_PREFIX) :]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with tar.extractfile(member) as src, open(out, "wb") as dst:  # type: ignore[union-attr]
                        shutil.copyfileobj(src, dst)
        os.replace(staging, tasks)  # atomic: a crash leaves only a stray staging folder
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    sdist.unlink()  # the extracted JSONs are all we read; the 358 MB archive need not stay
    return tasks


@cache
def _task_json(source: str) -> dict:
    return json.loads((tasks_dir() / source / "task.json").read_text(encoding="utf-8"))


# -------------------------------------------------------------------------------------------- formatting


def lettered(question: str, options: list[str]) -> str:
    """The question with its options listed as BBH shows them: "Options:\n(A) ..\n(B) .." (past Z: (AA), ..)."""
    lines = [f"{option_label(i)} {opt}" for i, opt in enumerate(options)]
    return question.rstrip() + "\nOptions:\n" + "\n".join(lines)


def _letter(index: int) -> str:
    return option_label(index)


def _best(target_scores: dict[str, float]) -> str:
    return max(target_scores, key=lambda k: target_scores[k])


def _with_prefix(task: dict, text: str) -> str:
    prefix = task.get("task_prefix", "").strip()
    text = task.get("example_input_prefix", "").lstrip("\n") + text.strip()
    return f"{prefix}\n{text}" if prefix else text


def _inline_options(subtask: str, text: str) -> tuple[str, list[str]] | None:
    """hyperbaton and snarks write their two options inside the input; BBH moves them to an Options list."""
    import re

    if subtask == "hyperbaton":
        m = re.match(r'(.*?:)\s*a\s*"\s*(.*?)\s*"\s*b\s*"\s*(.*?)\s*"\s*\?*\s*$', text, re.S)
    else:
        m = re.match(r"(.*?\?)\s*\(a\)\s*(.*?)\s*\(b\)\s*(.*?)\s*$", text, re.S)
    return (m.group(1), [m.group(2), m.group(3)]) if m else None


def _format_bbh(spec: BBHSubtask, task: dict, ex: dict, rng: random.Random) -> tuple[str, str, list[str]] | None:
    """(question, answer, choices) in BBH's format, or None for an example that does not fit it."""
    text = ex["input"]
    scores = ex.get("target_scores")
    if spec.kind == "choice":
        if spec.name in ("hyperbaton", "snarks"):
            parsed = _inline_options(spec.name, text)
            if parsed is None:
                return None
            stem, options = parsed
            right = _best(scores).strip("()")
            return lettered(stem, options), _letter("ab".index(right)), options
        options = [k.strip() for k in scores]
        right = _best(scores).strip()
        if spec.name.startswith("tracking_shuffled_objects"):
            options = [o.rstrip(".") for o in options]
            right = right.rstrip(".")
        if spec.shuffle_options:
            rng.shuffle(options)
        return lettered(_with_prefix(task, text), options), _letter(options.index(right)), options
    if spec.kind == "label":
        labels = _LABELS[spec.name]
        answer = labels[_best(scores)]
        choices = list(labels.values())
        if spec.name == "sports_understanding":
            return f'Is the following sentence plausible? "{text.strip().rstrip(".")}."', answer, choices
        question = _with_prefix(task, text) + "\nOptions:\n" + "\n".join(f"- {c}" for c in choices)
        return question, answer, choices
    if spec.kind == "number":  # object_counting lists the number as a word and as digits
        digits = [t for t in ex["target"] if t.strip().lstrip("-").isdigit()]
        return (_with_prefix(task, text), digits[0].strip(), []) if digits else None
    # free text: word sorting and Dyck completions
    answer = ex["target"] if isinstance(ex.get("target"), str) else _best(scores)
    prefix = task.get("task_prefix", "").strip()
    input_prefix = task.get("example_input_prefix", "").strip()
    return f"{prefix} {input_prefix} {text.strip()}", answer.strip(), []


# --------------------------------------------------------------------------------------------- sampling


def _sample(items: list, limit: int, rng: random.Random) -> list:
    return rng.sample(items, limit) if len(items) > limit else list(items)


def _split(examples: list[Example]) -> list[Example]:
    n_train = round(len(examples) * TRAIN_SHARE)
    return [e.model_copy(update={"split": "train" if i < n_train else "test"}) for i, e in enumerate(examples)]


def _programmatic(name: str, n: int, seed: int) -> list[Example] | None:
    try:
        from ..lab import bbh_programmatic_examples  # type: ignore[attr-defined]
    except ImportError:
        return None
    return bbh_programmatic_examples(name, n, seed)


def bbh_availability() -> dict[str, str]:
    """Each BBH subtask and where its examples come from, or why it is unavailable."""
    out = {}
    try:
        from ..lab import bbh_programmatic_examples  # type: ignore[attr-defined]  # noqa: F401

        lab = "lab generator"
    except ImportError:
        lab = "unavailable: BIG-bench has only a task.py and the lab generator is not installed"
    for name, spec in BBH_SUBTASKS.items():
        out[name] = f"big-bench {spec.source}" if spec.source else lab
    return out


def check_subtasks(names: list[str] | None, known: list[str], what: str) -> list[str]:
    if names is None:
        return list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise CotdistillError(f"unknown {what} '{unknown[0]}'; known: {', '.join(known)}")
    return list(names)


def load_bbh(
    subtasks: list[str] | None = None,
    split: str | None = None,
    max_per_task: int = BBH_MAX_PER_TASK,
    seed: int = DEFAULT_SEED,
) -> list[Example]:
    """BBH examples of the given subtasks (all available ones by default), optionally one split only."""
    names = check_subtasks(subtasks, list(BBH_SUBTASKS), "BBH subtask")
    out: list[Example] = []
    for name in names:
        spec = BBH_SUBTASKS[name]
        rng = random.Random(f"bbh:{seed}:{name}")
        if spec.source is None:
            generated = _programmatic(name, max_per_task, seed)
            if generated is None:
                if subtasks is not None:
                    raise CotdistillError(f"BBH subtask '{name}' is unavailable: {bbh_availability()[name]}")
                continue
            examples = [e.model_copy(update={"id": f"bbh/{name}/{i}", "task": name}) for i, e in enumerate(generated)]
        else:
            task = _task_json(spec.source)
            examples = []
            for index, raw in _sample(list(enumerate(task["examples"])), max_per_task, rng):
                formatted = _format_bbh(spec, task, raw, rng)
                if formatted is None:
                    continue
                question, answer, choices = formatted
                examples.append(
                    Example(
                        id=f"bbh/{name}/{index}",
                        task=name,
                        question=question,
                        answer=answer,
                        answer_format=spec.kind,
                        choices=choices,
                        task_description=task.get("description", "").strip(),
                    )
                )
        out.extend(e for e in _split(examples) if split is None or e.split == split)
    return out


# ----------------------------------------------------------------------------------------------- BB-sub


def _leaf_tasks() -> list[tuple[str, dict, dict]]:
    """(name, parent task json, leaf task json) for every BIG-bench JSON task, subtasks as their own tasks."""
    root = tasks_dir()
    leaves = []
    for top in sorted(p.name for p in root.iterdir() if (p / "task.json").exists()):
        parent = _task_json(top)
        subs = sorted(p.name for p in (root / top).iterdir() if (p / "task.json").exists())
        if subs:
            leaves.extend((f"{top}/{s}", parent, _task_json(f"{top}/{s}")) for s in subs)
        else:
            leaves.append((top, parent, parent))
    return leaves


@cache
def bbsub_index() -> dict[str, int]:
    """BB-sub's tasks with their number of multiple-choice examples, computed once and kept in the cache.

    The rule: BIG-bench tasks tagged "multiple choice" and some kind of "reasoning", minus BBH's sources.
    BIG-bench has no plain "reasoning" keyword, only "logical reasoning", "causal reasoning" and the like;
    reading EDIT's rule as "a keyword containing reasoning" and counting subtasks as tasks gives its 61.
    """
    index_file = tasks_dir().parent / "bbsub_index.json"
    if index_file.exists():
        return json.loads(index_file.read_text())
    index = {}
    for name, parent, leaf in _leaf_tasks():
        keywords = set(parent.get("keywords", [])) | set(leaf.get("keywords", []))
        if name.split("/")[0] in BBH_SOURCE_TASKS or "multiple choice" not in keywords:
            continue
        n_choice = sum(1 for e in leaf.get("examples", []) if e.get("target_scores"))
        if any("reasoning" in k for k in keywords) and n_choice:
            index[name] = n_choice
    atomic_write_text(index_file, json.dumps(index, indent=1))
    return index


def bbsub_task_name(source: str) -> str:
    return source.replace("/", "_")


def load_bbsub(
    tasks: list[str] | None = None, max_per_task: int = BBSUB_MAX_PER_TASK, seed: int = DEFAULT_SEED
) -> list[Example]:
    """BB-sub: an out-of-distribution test set of lettered multiple-choice questions (split "test")."""
    by_name = {bbsub_task_name(s): s for s in bbsub_index()}
    names = check_subtasks(tasks, list(by_name), "BB-sub task")
    out = []
    for name in names:
        source = by_name[name]
        task = _task_json(source)
        rng = random.Random(f"bbsub:{seed}:{name}")
        candidates = [(i, e) for i, e in enumerate(task["examples"]) if e.get("target_scores")]
        for index, raw in _sample(candidates, max_per_task, rng):
            scores = raw["target_scores"]
            options = [k.strip() for k in scores]
            right = _best(scores).strip()
            top = max(scores.values())
            # Every option with the top score is right (a few items give full marks to several).
            also_right = [k.strip() for k, v in scores.items() if v == top and k.strip() != right]
            rng.shuffle(options)
            out.append(
                Example(
                    id=f"bbsub/{name}/{index}",
                    task=name,
                    question=lettered(_with_prefix(task, raw["input"]), options),
                    answer=_letter(options.index(right)),
                    alternatives=[_letter(options.index(o)) for o in also_right],
                    answer_format="choice",
                    choices=options,
                    task_description=task.get("description", "").strip(),
                    split="test",
                )
            )
    return out
