"""BB-sub, built from the task JSONs inside the `bigbench==1.0.0` sdist.

The sdist is fetched once from the package registry into the cache (never installed: its dependencies pin
old TensorFlow) and its `task.json` files are extracted once into the cache, so later loads read plain JSON.
`pip download --no-deps` cannot fetch it, because pip builds the sdist's metadata and that step rejects its
`file://` dependency on bleurt, so we read the registry's simple index (PEP 691 JSON) ourselves and check the
sha256 it publishes.

BB-sub (EDIT's out-of-distribution set) is BIG-bench's multiple-choice reasoning tasks outside BBH's source
tasks, rewritten with lettered options. BBH itself comes from its official release (data/bbh.py): a rebuild
from these task JSONs shares only 36% of the official questions.
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
from functools import cache
from pathlib import Path

from ..errors import CotdistillError
from ..paths import cache_dir
from ..records import Example, atomic_write_text
from .common import check_tasks, letter, lettered

SDIST_NAME = "bigbench-1.0.0.tar.gz"
SDIST_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
TASKS_PREFIX = "bigbench-1.0.0/bigbench/benchmark_tasks/"
DEFAULT_INDEX = "https://pypi.org/simple"

BBSUB_MAX_PER_TASK = 100
DEFAULT_SEED = 0

# The BIG-bench tasks BBH's 27 tasks were drawn from: BB-sub leaves them out.
BBH_SOURCE_TASKS = {
    "boolean_expressions", "causal_judgment", "date_understanding", "disambiguation_qa", "dyck_languages",
    "formal_fallacies_syllogisms_negation", "geometric_shapes", "hyperbaton", "logical_deduction",
    "movie_recommendation", "multistep_arithmetic", "navigate", "object_counting", "penguins_in_a_table",
    "reasoning_about_colored_objects", "ruin_names", "salient_translation_error_detection", "snarks",
    "sports_understanding", "temporal_sequences", "tracking_shuffled_objects", "web_of_lies", "word_sorting",
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


def _best(target_scores: dict[str, float]) -> str:
    return max(target_scores, key=lambda k: target_scores[k])


def _with_prefix(task: dict, text: str) -> str:
    prefix = task.get("task_prefix", "").strip()
    text = task.get("example_input_prefix", "").lstrip("\n") + text.strip()
    return f"{prefix}\n{text}" if prefix else text


# --------------------------------------------------------------------------------------------- sampling


def _sample(items: list, limit: int, rng: random.Random) -> list:
    return rng.sample(items, limit) if len(items) > limit else list(items)


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
    names = check_tasks(tasks, list(by_name), "BB-sub task")
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
                    answer=letter(options.index(right)),
                    alternatives=[letter(options.index(o)) for o in also_right],
                    answer_format="choice",
                    choices=options,
                    task_description=task.get("description", "").strip(),
                    split="test",
                )
            )
    return out
