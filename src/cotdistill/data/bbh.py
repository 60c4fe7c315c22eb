"""Official BIG-Bench Hard (Suzgun et al., 2022): the 27 task files of the release, 6,511 questions.

Each task file is `{"canary", "examples": [{"input", "target"}]}` with multiple-choice options written inside
`input` ("Options:\\n(A) ..."). Where the files come from, in this order:

* `data.path`: a local folder holding the task files, directly or in `tasks/` (the project's shared data) or
  `bbh/` (a clone of the release);
* `data.hub`: a `datasets` hub dataset with one config per task and rows `{"input", "target"}`;
* `$COTDISTILL_DATA/bbh`, when that folder exists;
* the release itself, downloaded once at a pinned commit into the cache, every file checked against its
  sha256 below.

Task descriptions (EDIT's student prompt starts with one for BBH) are the first line of each task's 3-shot
CoT prompt file (`cot-prompts/<task>.txt`), read from beside the task files or from the pinned release.

Every task is split train:test 4:1 at random, seeded by `data.seed` and the task name; ids are
`bbh/<task>/<index in the official file>`, so they stay the same whatever the split.

Broken items of the release, all kept so the counts stay the official ones:

* three golds are option text instead of a letter, because the release split one option at its commas into
  several: movie_recommendation #163 ("Monsters, Inc" is options (A) "Monsters" + (B) "Inc"), ruin_names #99
  ("dearth, wind, & fire" is (I) + (J) + (K)) and ruin_names #144 ("rita, sue and bob poo" is (C) + (D)).
  The gold becomes the letter of the option the split starts at: (A), (I) and (C);
* snarks #88 is truncated: its input ends "(A) The NB", with no option (B). The release's own
  code-davinci-002 outputs (`outputs/`, item 88 of snarks) hold the whole question; the loader restores it
  from there (SNARKS_88 below), gold (A) unchanged.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

from ..errors import CotdistillError
from ..paths import cache_dir
from ..records import Example
from .common import check_tasks, letter, local_folder, parse_options, read_json_list, train_indices

RELEASE_REPO = "suzgunmirac/BIG-Bench-Hard"
RELEASE_COMMIT = "9ee07bd481feebf959a6b59d61ea57bdcf30964d"
RELEASE_URL = f"https://raw.githubusercontent.com/{RELEASE_REPO}/{RELEASE_COMMIT}"

# task -> (sha256 of bbh/<task>.json, sha256 of cot-prompts/<task>.txt) at RELEASE_COMMIT
RELEASE_SHA256: dict[str, tuple[str, str]] = {
    "boolean_expressions": ("ea6c754ec005e2d3f2d085d349a740f593b5764f32ea4638ffed4cfc0061b12a", "685affba97425cdf3549d5d313ba876caed2fa7c8a4cf1ea7549faf22179609d"),
    "causal_judgement": ("6e8bca44dd402008ed41c07a3d0a1d5e7b03db7001a7e002fcdf4c60985ea081", "14377e36cccb084b7d0fe73988d08696f7675d712b02d3ae1f5f7f12c77028ea"),
    "date_understanding": ("0148d4ac5fca05b2f82373e5fef7208e15363b9c6079493034d77b3dab496bf5", "a0a13c392f689a1828f5f6ffb9dee3d44483794490da5d92f0e2a723787b1cfb"),
    "disambiguation_qa": ("cf06df9ebf911b883671cb1b35d3fbd1a1c306b19b9e9a012407e596c85fe8c6", "794fd259297972a4c963a5d13a84dc221edde460de27fa5d8fd64299a2001597"),
    "dyck_languages": ("3f9badedf15c2be1ce53d94fdf016299bb30ba231ef087ab9f51a7ed6d0bdc25", "b0836603007ec659ed685458647fb6d7543543304e7aca909b995d0c3aff22b2"),
    "formal_fallacies": ("4c1adb664821157faade1d4153685403afcc02648f3c180a608a18f17f589629", "10c06cc362520e9b8dddfc4861e263ff668d228a52d958dcc69f09f1d224935a"),
    "geometric_shapes": ("07be68a124420caa2ebc0b2c858ad79fc55c5c8806170e496e1e17ebfb11f31c", "f36d9893507eb518d84f388fb677dc0226c74a98873700de0b556548d65d3f76"),
    "hyperbaton": ("b6d7f55c75f5d02f2987a4f3123802dfa093872089a56a334144aae8a7264fdc", "19898af91c35cb26bbdf5fdb6f6fb17e138677250332e2994005625ffb50b261"),
    "logical_deduction_five_objects": ("d2df31394b903b7f0e085d42a69572a092987856eac076799017d70ef266fa8f", "4ed65246c0c1c4b0b4053d784181892b842bce19cf4358c976f34b1a434ef034"),
    "logical_deduction_seven_objects": ("2896c7e3482eea318dd37bcc370d24ec3cc91e8374c1784287b5dbd38a529e33", "4ed65246c0c1c4b0b4053d784181892b842bce19cf4358c976f34b1a434ef034"),
    "logical_deduction_three_objects": ("e590fae72e3a6041fbd23bd8ff6b74baf44ca563f6ba40a041c55e7b867c1681", "4ed65246c0c1c4b0b4053d784181892b842bce19cf4358c976f34b1a434ef034"),
    "movie_recommendation": ("a8b53a87ee21a865b7248e694f388a9b8f7cf6b839b11d44796a2dd3fc088983", "cdf765634713b057091d541b4773dd2c998f81447b0bd8564ae70be4cdf3f5d0"),
    "multistep_arithmetic_two": ("c9d5a6433c9b78256422a15c78463949c8bec8d85607aa28b52d7234ad4a8595", "a546e0b7cde09037bc144ae5c32c9cf78dafdfac929ae76e2051b2dd8f3671ce"),
    "navigate": ("b7944dfd3c81da5c4815bd75b00d6fa3c64140823498e78ed496f4c3d36f7f0d", "dc2fd733f1867b8c79685f15b83746064534a94bf73468341c2a9dd335be22fc"),
    "object_counting": ("8acef14dbbdd40d2326ef7755750b6b5fe919fef06276af1bab3f1c297f022ff", "e51ffc03fd713a13a379a6c938a523dfc1c2f384f2a8447bd7a12d4458f18833"),
    "penguins_in_a_table": ("bb87ee449698eee51215e025a453b1bcb2f5e6589c2063b2c79e68b8f0655228", "33be137e76c2a6af0bbacd17a8e7a92801886c0202a45e35ea9c2a88c1f26d51"),
    "reasoning_about_colored_objects": ("0a8850cf95166020fce7a78244026ceedd7ea839302471512b4f8744e85a6a49", "e4ea02d05b13e8ed9ccc3b0d878bc4df4c5a6fb76c65d39d48d6244f7ff0b9d5"),
    "ruin_names": ("b6f723aef2bafdd4c7bfc3c7e0329c7e8a8279391a609969c8ed76c9319f5f7f", "731446c6c66bb5258677af1417b599a6a5539be6d74a5afc02cf7a716444ea54"),
    "salient_translation_error_detection": ("becf3eb8dd53c821a555ecd5c1334ecd93eb25f980e63be963c518e7138de5da", "2c8367f75092202cc507fdbfaaf037b1c1eed38e91289084439738367f0785f7"),
    "snarks": ("54a0661fe2de06167645a4965e6bcf963c4ba307e76262a7c750998b0e3d0d0e", "35084a2a0b86bc4008ab206b838c0b97dd425897dd72198137c3cefc499c0960"),
    "sports_understanding": ("63ca262858f6176864515cd8cf53cdaa40839ebecc155b726d77930855d167bf", "2058a9bed717a6edb8ca2f815e88851436a4ee14c8b0d504ccf464865c6d0295"),
    "temporal_sequences": ("92a1189faaa84aacc4c405aaa13f13f48c2992eb884772eedb622505252baef5", "3e7ebf1e20abe3e219dc6514dcb7474d82db1b2c66acc733cd30af2e9e0b64b0"),
    "tracking_shuffled_objects_five_objects": ("2063a46a4fb484236ed4310523606543a3e1dd4a4dc34eda65d407910ece25a5", "2ef54cb2a72052adc3484a76209cb6a6535f194d677e79bcec2e2e71cf3768af"),
    "tracking_shuffled_objects_seven_objects": ("b59fd05b850c37cf57cb514ae1e6975c00b1638ade2291722056b2af3c54084d", "2ef54cb2a72052adc3484a76209cb6a6535f194d677e79bcec2e2e71cf3768af"),
    "tracking_shuffled_objects_three_objects": ("546cc7bf10c6a01a6a4c17ae28a4966485f21f29fd5d111f37858ec78e354f6b", "2ef54cb2a72052adc3484a76209cb6a6535f194d677e79bcec2e2e71cf3768af"),
    "web_of_lies": ("3e60323f8514a107fdb4edf35f8832a9171c5a09c0eaa47823559de905e8ab8b", "c8025ca65ab7f0897c243504c863bda043d04b6e873777536743e94023c929d0"),
    "word_sorting": ("2a6132d2c99f00d0d2eb1113ac6b4a918bd969d863c48749210d969713db8d43", "a2cdbcfe23abaa97b9787f7c03dbf49b1cfd0ff9e63197b7884bb5cd5a096ca6"),
}

# Binary tasks answer with a word; their labels exactly as the release's targets write them.
LABELS: dict[str, list[str]] = {
    "boolean_expressions": ["True", "False"],
    "causal_judgement": ["Yes", "No"],
    "formal_fallacies": ["valid", "invalid"],
    "navigate": ["Yes", "No"],
    "sports_understanding": ["yes", "no"],
    "web_of_lies": ["Yes", "No"],
}
# snarks #88 as the release's code-davinci-002 outputs ask it; the task file cuts it after "(A) The NB".
SNARKS_88_TRUNCATED = "Which statement is sarcastic?\nOptions:\n(A) The NB"
SNARKS_88 = ("Which statement is sarcastic?\nOptions:\n"
             "(A) The NBA: let's just imagine people playing ball and give the Warriors a trophy every year\n"
             "(B) The NBA: let's just imagine people playing ball and give the champions a trophy every year")
NUMBERS = {"object_counting", "multistep_arithmetic_two"}
FREE_TEXT = {"dyck_languages", "word_sorting"}  # Dyck completions and sorted word lists
TASKS = sorted(RELEASE_SHA256)


def answer_format(task: str) -> str:
    if task in LABELS:
        return "label"
    if task in NUMBERS:
        return "number"
    return "text" if task in FREE_TEXT else "choice"


# ---------------------------------------------------------------------------------------------- sources


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def download_release(dest: Path) -> Path:
    """Fetch the 27 task files and CoT prompts at the pinned commit into dest (tasks/, cot-prompts/), once.

    Every file is checked against its pinned sha256 before the folder appears, so a partial or altered
    download never lands in the cache."""
    if (dest / "tasks").is_dir():
        return dest
    if os.environ.get("COTDISTILL_OFFLINE"):
        raise CotdistillError("official BBH is not in the cache and COTDISTILL_OFFLINE is set: set data.path or "
                              "$COTDISTILL_DATA to a folder with the release's task files")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}-"))
    try:
        for task, (task_sha, prompt_sha) in RELEASE_SHA256.items():
            for remote, local, want in ((f"bbh/{task}.json", f"tasks/{task}.json", task_sha),
                                        (f"cot-prompts/{task}.txt", f"cot-prompts/{task}.txt", prompt_sha)):
                target = staging / local
                target.parent.mkdir(parents=True, exist_ok=True)
                url = f"{RELEASE_URL}/{remote}"
                try:
                    with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:
                        shutil.copyfileobj(response, out)
                except OSError as e:
                    raise CotdistillError(f"cannot download official BBH ({url}): {e}; put the release's files in "
                                          f"a folder and set data.path, or set $COTDISTILL_DATA") from None
                if _sha256(target) != want:
                    raise CotdistillError(f"{url}: sha256 mismatch (got {_sha256(target)}, pinned {want})")
        os.replace(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def release_dir() -> Path:
    """The pinned release in the cache, downloaded on first use."""
    return download_release(cache_dir() / f"bbh-{RELEASE_COMMIT[:7]}")


def _tasks_folder(folder: Path) -> Path:
    for candidate in (folder / "tasks", folder / "bbh", folder):
        if candidate.is_dir() and any(candidate.glob("*.json")):
            return candidate
    raise CotdistillError(f"BBH folder '{folder}' holds no task files (<task>.json, directly or in tasks/ or bbh/)")


def _prompts_folder(tasks_folder: Path | None) -> Path | None:
    """Where the CoT prompt files are: beside the task files, else the cached release (downloaded for a hub
    source, which needs the network anyway), else None: descriptions stay empty, with a warning."""
    beside = [] if tasks_folder is None else [tasks_folder / "cot-prompts", tasks_folder.parent / "cot-prompts"]
    cached = cache_dir() / f"bbh-{RELEASE_COMMIT[:7]}" / "cot-prompts"
    for candidate in [*beside, cached]:
        if candidate.is_dir():
            return candidate
    if tasks_folder is None:
        return release_dir() / "cot-prompts"
    print(f"cotdistill: warning: no cot-prompts/ beside {tasks_folder}; BBH task descriptions left empty",
          file=sys.stderr)
    return None


def task_description(prompt_text: str) -> str:
    """The first line after the prompt file's canary header ("-----"), without a "Task description:" label."""
    lines = prompt_text.splitlines()
    body = lines[lines.index("-----") + 1 :] if "-----" in lines else lines
    first = next((line.strip() for line in body if line.strip()), "")
    return first.removeprefix("Task description:").strip()


def _rows_from_folder(folder: Path, task: str) -> tuple[str, list[dict]]:
    path = folder / f"{task}.json"
    if not path.is_file():
        raise CotdistillError(f"BBH task file '{path}' is missing")
    return str(path), read_json_list(path, "examples", "BBH task file", 'the release\'s {"examples": [...]}')


def _rows_from_hub(name: str, task: str) -> tuple[str, list[dict]]:
    import datasets

    try:
        splits = datasets.load_dataset(name, task)
    except Exception as e:  # datasets raises many types for a bad name; the user needs one line
        raise CotdistillError(f"cannot load BBH task '{task}' from dataset '{name}': {str(e).splitlines()[0]}") from None
    return f"{name}:{task}", [row for split in sorted(splits) for row in splits[split]]


# -------------------------------------------------------------------------------------------- examples


def _gold_letter(target: str, options: list[str], where: str) -> str:
    """The gold as an option letter; a gold that is the text of an option the release split at its commas
    (see the module docstring) becomes the letter of the option the split starts at."""
    if len(target) == 3 and target[0] == "(" and target[2] == ")" and 0 <= ord(target[1]) - 65 < len(options):
        return target
    for start in range(len(options)):
        for end in range(start + 1, len(options) + 1):
            if ", ".join(options[start:end]) == target:
                return letter(start)
    raise CotdistillError(f"{where}: field 'target': {target!r} is neither an option letter nor option text")


def to_example(task: str, index: int, row: object, description: str, split: str, where: str) -> Example:
    """One release row as an Example; a malformed row raises an error naming the file, item and field."""
    where = f"{where}: examples[{index}]"
    if not isinstance(row, dict):
        raise CotdistillError(f"{where}: expected an object with 'input' and 'target'")
    for field in ("input", "target"):
        if not isinstance(row.get(field), str) or not row[field].strip():
            raise CotdistillError(f"{where}: field '{field}': missing or not a string")
    question, target = row["input"], row["target"].strip()
    if task == "snarks" and question == SNARKS_88_TRUNCATED:
        question = SNARKS_88
    fmt = answer_format(task)
    choices: list[str] = []
    if fmt == "choice":
        choices = [text for _, text in parse_options(question.splitlines())]
        target = _gold_letter(target, choices, where)
    elif fmt == "label":
        choices = LABELS[task]
        if target not in choices:
            raise CotdistillError(f"{where}: field 'target': {target!r} is not one of {choices}")
    return Example(id=f"bbh/{task}/{index}", task=task, question=question, answer=target, answer_format=fmt,
                   choices=choices, task_description=description, split=split)


def load_bbh(subtasks: list[str] | None = None, split: str | None = None, seed: int = 0,
             path: str | None = None, hub: str | None = None) -> list[Example]:
    """Official BBH examples of the given tasks (all 27 by default), in file order, optionally one split."""
    names = check_tasks(subtasks, TASKS, "BBH task")
    tasks_folder = None
    if not hub:
        folder = local_folder(path, "bbh")
        tasks_folder = _tasks_folder(folder) if folder else release_dir() / "tasks"
    prompts = _prompts_folder(tasks_folder)
    out: list[Example] = []
    for task in names:
        where, rows = _rows_from_hub(hub, task) if hub else _rows_from_folder(tasks_folder, task)  # type: ignore[arg-type]
        prompt_file = prompts / f"{task}.txt" if prompts else None
        description = task_description(prompt_file.read_text(encoding="utf-8")) if prompt_file and prompt_file.is_file() else ""
        train = train_indices(len(rows), seed, f"bbh:{task}")
        for index, row in enumerate(rows):
            part = "train" if index in train else "test"
            if split is None or part == split:
                out.append(to_example(task, index, row, description, part, where))
    return out
