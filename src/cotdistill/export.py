"""`cotdistill export`: a run's CoTs, dual pairs or weighted sequences in the formats other trainers read.

    cotdistill export runs/teach --format trl-sft --out exported/

Sources: a `cotdistill teach` run folder (teach_examples.jsonl, rationales.jsonl, pairs.jsonl) or a
`cotdistill lab --out` folder (examples.jsonl, ...); or `--sequences FILE --tokenizer DIR` for compiled
WeightedSequence JSONL. Supervised formats take the graded CoTs that are correct and not cut off (or the
decoded sequences); pairwise formats take the dual pairs, the correct CoT as chosen.

| format | file | rows |
|---|---|---|
| trl-sft | sft.jsonl | {"prompt", "completion"}: TRL's prompt-completion form (loss on the completion) |
| trl-dpo | dpo.jsonl | {"prompt", "chosen", "rejected"}: TRL's preference form |
| openai | openai.jsonl | {"messages": [user, assistant]}: OpenAI fine-tuning / TRL conversational |
| sharegpt | sharegpt.jsonl | {"conversations": [{"from": "human"}, {"from": "gpt"}]} |
| alpaca | alpaca.json | {"instruction", "input", "output"} + a dataset_info.json entry for LLaMA-Factory |
| alpaca-pairwise | alpaca_pairwise.json | {"instruction", "input", "chosen", "rejected"} + dataset_info.json ("ranking") |

The prompt-completion forms keep the student prompt the methods train with (`prompting.plain_prompt`, the CoT
after a space); the chat forms send the question as a user turn with the output format in words
(`prompting.chat_user_message`). Token weights cannot be expressed in any of these formats: sequences are
exported as plain text, and a sequence with a negative weight (unlikelihood on a wrong CoT) is left out and
counted.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import CotdistillError
from .records import DualPair, Example, Rationale, WeightedSequence, atomic_write_text, read_jsonl, write_jsonl

FORMATS = ("trl-sft", "trl-dpo", "openai", "sharegpt", "alpaca", "alpaca-pairwise")
PAIRWISE = ("trl-dpo", "alpaca-pairwise")
DATASET_INFO = "dataset_info.json"


@dataclass(frozen=True)
class Target:
    """One supervised row: `prompt` + `completion` is the training text; `user` is the question as a chat turn."""

    prompt: str
    user: str
    completion: str


@dataclass(frozen=True)
class Preference:
    prompt: str
    user: str
    chosen: str
    rejected: str


def _examples(run_dir: Path) -> dict[str, Example]:
    for name in ("teach_examples.jsonl", "examples.jsonl"):
        if (run_dir / name).is_file():
            return {e.id: e for e in read_jsonl(run_dir / name, Example)}
    raise CotdistillError(f"{run_dir}: no teach_examples.jsonl or examples.jsonl (a `cotdistill teach` or "
                          "`cotdistill lab` folder)")


def _artifact(run_dir: Path, name: str) -> Path:
    path = run_dir / name
    if not path.is_file():
        raise CotdistillError(f"{run_dir}: no {name} to export (run the stages that write it first)")
    return path


def _example(examples: dict[str, Example], example_id: str, where: Path) -> Example:
    try:
        return examples[example_id]
    except KeyError:
        raise CotdistillError(f"{where}: refers to example {example_id!r}, which the run's examples lack") from None


def targets_from_run(run_dir: str | Path) -> list[Target]:
    """The run's graded CoTs that are correct and complete, each after its question."""
    from .prompting import chat_user_message, plain_prompt

    run = Path(run_dir)
    examples = _examples(run)
    source = _artifact(run, "rationales.jsonl")
    rows = []
    for r in read_jsonl(source, Rationale):
        if r.correct and not r.truncated:
            e = _example(examples, r.example_id, source)
            rows.append(Target(plain_prompt(e), chat_user_message(e), f" {r.text.strip()}"))
    return rows


def preferences_from_run(run_dir: str | Path) -> list[Preference]:
    """The run's dual pairs: the correct CoT chosen, the wrong one rejected."""
    from .prompting import chat_user_message, plain_prompt

    run = Path(run_dir)
    examples = _examples(run)
    source = _artifact(run, "pairs.jsonl")
    rows = []
    for p in read_jsonl(source, DualPair):
        e = _example(examples, p.example_id, source)
        rows.append(Preference(plain_prompt(e), chat_user_message(e), f" {p.chosen.text.strip()}",
                               f" {p.rejected.text.strip()}"))
    return rows


def targets_from_sequences(path: str | Path, tokenizer) -> tuple[list[Target], int]:
    """Weighted sequences decoded to text, and how many were left out for a negative weight."""
    rows, skipped = [], 0
    for s in read_jsonl(path, WeightedSequence):
        if s.instance_weight < 0 or any(w < 0 for w in s.target_weights):
            skipped += 1
            continue
        prompt = tokenizer.decode(s.prompt_ids, skip_special_tokens=True)
        completion = tokenizer.decode(s.target_ids, skip_special_tokens=True)
        rows.append(Target(prompt, prompt.strip(), completion))
    return rows, skipped


def _chat(user: str, reply: str, roles: tuple[str, str], key: str, text: str) -> list[dict]:
    return [{key: roles[0], text: user}, {key: roles[1], text: reply.strip()}]


# format -> (file name, row builder); supervised formats build from a Target, pairwise ones from a Preference
_SUPERVISED: dict[str, tuple[str, Callable[[Target], dict]]] = {
    "trl-sft": ("sft.jsonl", lambda t: {"prompt": t.prompt, "completion": t.completion}),
    "openai": ("openai.jsonl",
               lambda t: {"messages": _chat(t.user, t.completion, ("user", "assistant"), "role", "content")}),
    "sharegpt": ("sharegpt.jsonl",
                 lambda t: {"conversations": _chat(t.user, t.completion, ("human", "gpt"), "from", "value")}),
    "alpaca": ("alpaca.json", lambda t: {"instruction": t.user, "input": "", "output": t.completion.strip()}),
}
_PAIRED: dict[str, tuple[str, Callable[[Preference], dict]]] = {
    "trl-dpo": ("dpo.jsonl", lambda p: {"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}),
    "alpaca-pairwise": ("alpaca_pairwise.json", lambda p: {"instruction": p.user, "input": "",
                                                           "chosen": p.chosen.strip(), "rejected": p.rejected.strip()}),
}
# LLaMA-Factory's dataset_info.json entries: its column roles mapped to our column names
_LLAMA_FACTORY = {
    "alpaca": {"columns": {"prompt": "instruction", "query": "input", "response": "output"}},
    "alpaca-pairwise": {"ranking": True,
                        "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}},
}


def write_export(rows: Sequence[Target] | Sequence[Preference], fmt: str, out_dir: str | Path,
                 name: str = "cotdistill") -> Path:
    """Write `rows` in `fmt` into out_dir; returns the data file. LLaMA-Factory formats also get (or add to)
    dataset_info.json under the entry `name` ("_pairwise" appended for the pairwise one)."""
    if fmt not in FORMATS:
        raise CotdistillError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    file_name, build = (_PAIRED if fmt in PAIRWISE else _SUPERVISED)[fmt]  # type: ignore[index]
    out = Path(out_dir)
    data = [build(r) for r in rows]
    target = out / file_name
    if file_name.endswith(".jsonl"):
        write_jsonl(target, data)
    else:
        atomic_write_text(target, json.dumps(data, ensure_ascii=False, indent=1) + "\n")
    if fmt in _LLAMA_FACTORY:
        info_path = out / DATASET_INFO
        info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
        entry = f"{name}_pairwise" if fmt in PAIRWISE else name
        info[entry] = {"file_name": file_name, **_LLAMA_FACTORY[fmt]}
        atomic_write_text(info_path, json.dumps(info, indent=2) + "\n")
    return target


# ---- the command ---------------------------------------------------------------------------------------------


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", nargs="?", help="a `cotdistill teach` or `cotdistill lab` folder")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--out", required=True, help="folder for the exported file(s)")
    p.add_argument("--sequences", help="WeightedSequence JSONL to export instead of a run's CoTs")
    p.add_argument("--tokenizer", help="folder or alias of the tokenizer that encoded --sequences")
    p.add_argument("--name", default="cotdistill", help="dataset name in LLaMA-Factory's dataset_info.json")


def export_command(args: argparse.Namespace) -> None:
    if args.sequences:
        if args.format in PAIRWISE:
            raise CotdistillError(f"--format {args.format} needs dual pairs: give a run folder, not --sequences")
        if not args.tokenizer:
            raise CotdistillError("--sequences needs --tokenizer (the one that encoded them) to decode the text")
        from .models import load_tokenizer

        rows, skipped = targets_from_sequences(args.sequences, load_tokenizer(args.tokenizer))
        if skipped:
            print(f"left out {skipped} sequences with negative weights ({args.format} has no token weights)")
    elif args.run_dir:
        rows = preferences_from_run(args.run_dir) if args.format in PAIRWISE else targets_from_run(args.run_dir)
    else:
        raise CotdistillError("give a run folder or --sequences")
    path = write_export(rows, args.format, args.out, args.name)
    print(f"wrote {len(rows)} rows to {path}")
