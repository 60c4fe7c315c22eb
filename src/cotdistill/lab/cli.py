"""`cotdistill lab`: write a lab dataset (questions and scripted-teacher CoTs) to a folder.

The lead registers `add_lab_arguments` and `lab_command` in the main CLI; `python -m cotdistill.lab` runs the
same command on its own. Output: examples.jsonl and rationales.jsonl (records.py), written atomically, plus
pairs.jsonl (EDIT's dual pairs: rectified wrong CoTs and corrupted right ones) when --pairs is given; the
rectified and corrupted CoTs are then in rationales.jsonl as well (origin and parent set).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import CotdistillError
from ..records import DualPair, Example, Rationale, atomic_write_text, with_pair_sides, write_jsonl
from .families import FAMILIES, get_family
from .generate import generate_examples
from .teacher import ScriptedTeacher


def _knobs(specs: list[str]) -> dict[str, dict[str, int]]:
    """Parse "family.knob=value" (or "knob=value" for every family that has the knob)."""
    out: dict[str, dict[str, int]] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or not value.lstrip("-").isdigit():
            raise CotdistillError(f"--difficulty expects knob=INT or family.knob=INT, got {spec!r}")
        family, _, knob = key.rpartition(".")
        targets = [family] if family else [f for f, fam in FAMILIES.items() if knob in fam.default_difficulty]
        if not targets:
            raise CotdistillError(f"no lab family has a difficulty knob {knob!r}")
        for f in targets:
            get_family(f).difficulty(**{knob: int(value)})  # validates the knob name
            out.setdefault(f, {})[knob] = int(value)
    return out


def add_lab_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder to write examples.jsonl and rationales.jsonl into")
    parser.add_argument("--families", nargs="+", default=sorted(FAMILIES), choices=sorted(FAMILIES),
                        metavar="FAMILY", help=f"task families (default: all): {', '.join(sorted(FAMILIES))}")
    parser.add_argument("--n", type=int, default=100, help="questions per family and split (default 100)")
    parser.add_argument("--test-n", type=int, default=0, help="also a held-out test split of this size")
    parser.add_argument("--difficulty", nargs="*", default=[], metavar="KNOB=INT",
                        help="difficulty knobs, e.g. people=7 or tracking_shuffled_objects.objects=5")
    parser.add_argument("--hard", action="store_true", help="use each family's out-of-distribution setting")
    parser.add_argument("--samples", type=int, default=1, help="teacher CoTs per question (default 1)")
    parser.add_argument("--mistake-rate", type=float, default=0.0, help="share of CoTs with a typed mistake")
    parser.add_argument("--slip-rate", type=float, default=0.0,
                        help="question-dependent mistakes: chance of a slip per unit of step load (docs/lab.md)")
    parser.add_argument("--spurious-rate", type=float, default=0.0,
                        help="share of CoTs with broken steps but the right answer")
    parser.add_argument("--mistake-types", nargs="+", default=["calculation", "logical", "knowledge"],
                        metavar="TYPE=WEIGHT", help="mistake types, optionally weighted: logical=2 knowledge")
    parser.add_argument("--pairs", action="store_true",
                        help="also write pairs.jsonl: each wrong CoT rectified, each right one corrupted")
    parser.add_argument("--seed", type=int, default=0)


def _weights(specs: list[str]) -> dict[str, float]:
    weights = {}
    for spec in specs:
        name, _, weight = spec.partition("=")
        try:
            weights[name] = float(weight) if weight else 1.0
        except ValueError:
            raise CotdistillError(f"--mistake-types expects TYPE or TYPE=WEIGHT, got {spec!r}") from None
    return weights


def lab_command(args: argparse.Namespace) -> int:
    """Generate the dataset described by `args`; prints a one-line summary per family."""
    if args.n < 1 or args.test_n < 0 or args.samples < 1:
        raise CotdistillError("--n and --samples must be at least 1, --test-n at least 0")
    knobs = _knobs(args.difficulty)
    teacher = ScriptedTeacher(args.mistake_rate, args.spurious_rate, _weights(args.mistake_types), seed=args.seed,
                              slip_rate=args.slip_rate)
    examples: list[Example] = []
    rationales: list[Rationale] = []
    pairs: list[DualPair] = []
    for family in args.families:
        fam = get_family(family)
        difficulty = {**(fam.hard_difficulty if args.hard else {}), **knobs.get(family, {})}
        train = generate_examples(family, args.n, args.seed, difficulty, split="train")
        test = generate_examples(family, args.test_n, args.seed + 1, difficulty, split="test",
                                 exclude=[e.question for e in train]) if args.test_n else []
        solved = [r for rs in teacher.solve(train + test, n=args.samples) for r in rs]
        examples += train + test
        rationales += solved
        if args.pairs:
            pairs += _dual_pairs(teacher, train, [r for r in solved if r.example_id in {e.id for e in train}])
        wrong = sum(not r.correct for r in solved)
        print(f"{family}: {len(train)} train + {len(test)} test questions, {len(solved)} CoTs, {wrong} wrong "
              f"({wrong / len(solved):.1%})")
    out = Path(args.out)
    write_jsonl(out / "examples.jsonl", examples)
    rationales = with_pair_sides(rationales, pairs)
    write_jsonl(out / "rationales.jsonl", rationales)
    if args.pairs:
        write_jsonl(out / "pairs.jsonl", pairs)
    manifest = {k: v for k, v in vars(args).items() if k != "func"}
    atomic_write_text(out / "lab.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"wrote {len(examples)} examples, {len(rationales)} rationales"
          + (f", {len(pairs)} pairs" if args.pairs else "") + f" to {out}")
    return 0


def _dual_pairs(teacher: ScriptedTeacher, examples: list[Example], rationales: list[Rationale]) -> list[DualPair]:
    """EDIT's dual CoTs: (rectified, wrong) for wrong CoTs, (right, corrupted) for right ones."""
    by_id = {e.id: e for e in examples}
    wrong = [(by_id[r.example_id], r) for r in rationales if not r.correct]
    right = [(by_id[r.example_id], r) for r in rationales if r.correct and r.error_type is None]
    pairs = [DualPair(id=f"{fixed.id}~pair", example_id=w.example_id, chosen=fixed, rejected=w, kind="negative")
             for (_, w), fixed in zip(wrong, teacher.rectify(wrong))]
    pairs += [DualPair(id=f"{bad.id}~pair", example_id=r.example_id, chosen=r, rejected=bad, kind="positive")
              for (_, r), bad in zip(right, teacher.corrupt(right)) if not bad.correct]  # uncorruptible: unpaired
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cotdistill.lab", description=__doc__.splitlines()[0])
    add_lab_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return lab_command(args)
    except CotdistillError as e:
        parser.exit(2, f"error: {e}\n")
