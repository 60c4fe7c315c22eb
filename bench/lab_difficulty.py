"""The scripted teacher's mistakes against question difficulty: does D- over-represent hard questions and steps?

For one family, a list of difficulty levels and a teacher setting, no training: per level, the teacher's share
of wrong CoTs (the chance its settings predict beside it) and of spurious CoTs (right answer, broken steps:
"compensated" when the broken path itself reaches the right answer, "contradicts" when its last steps say
otherwise); then, pooled over the levels, the wrong share by question load (the sum of `Family.step_loads`),
which shows the question-dependence within a level; and the mean load of the step where mistakes land against
the mean load of the steps that could carry one.

    OMP_NUM_THREADS=1 PYTHONPATH=src python bench/lab_difficulty.py --family web_of_lies \
        --levels people=3 people=4 people=5 people=6 people=8 --slip-rate 0.04 --spurious-rate 0.05
Last line: the wrong share at the hardest level over the share at the easiest (1.0 = question-independent).
"""

from __future__ import annotations

import argparse
from collections import defaultdict

from cotdistill.lab import get_family, generate_examples
from cotdistill.lab.cli import _knobs
from cotdistill.lab.teacher import ScriptedTeacher


def _level(spec: str, family: str) -> dict[str, int]:
    """"people=5" or "objects=5,swaps=5" -> knobs (validated by the family)."""
    return _knobs([f"{family}.{part}" for part in spec.split(",")]).get(family, {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="web_of_lies")
    parser.add_argument("--levels", nargs="+", default=["people=3", "people=4", "people=5", "people=6", "people=8"],
                        help="difficulty levels, each KNOB=INT[,KNOB=INT], easiest first")
    parser.add_argument("--n", type=int, default=400, help="questions per level")
    parser.add_argument("--samples", type=int, default=1, help="CoTs per question")
    parser.add_argument("--mistake-rate", type=float, default=0.0)
    parser.add_argument("--slip-rate", type=float, default=0.04)
    parser.add_argument("--spurious-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    family = get_family(args.family)
    teacher = ScriptedTeacher(args.mistake_rate, args.spurious_rate, seed=args.seed, slip_rate=args.slip_rate)
    print(f"{args.family}: mistake_rate {args.mistake_rate}, slip_rate {args.slip_rate}, spurious_rate "
          f"{args.spurious_rate}, {args.n} questions x {args.samples} samples per level\n")
    print("| level | mean load | predicted wrong | wrong | spurious | compensated | contradicts |")
    print("|---|---|---|---|---|---|---|")
    wrong_by_load: dict[int, list[bool]] = defaultdict(list)
    site_loads: list[float] = []  # the load of the step each mistake landed on
    fault_site_loads: list[float] = []  # the loads of every step that could carry a mistake
    level_wrong: list[float] = []
    for spec in args.levels:
        examples = generate_examples(args.family, args.n, args.seed, _level(spec, args.family))
        loads, chances, wrong, spurious, compensated = [], [], 0, 0, 0
        for example, cots in zip(examples, teacher.solve(examples, n=args.samples)):
            problem = family.parse(example)
            step_loads = family.step_loads(problem)
            load = sum(step_loads)
            loads.append(load)
            chances.append(teacher.mistake_chance(family, problem))
            fault_site_loads += [step_loads[s] for s in sorted({s for t in family.mistake_types
                                                               for s in family.fault_steps(problem, t)})]
            for cot in cots:
                wrong += not cot.correct
                wrong_by_load[round(load)].append(not cot.correct)
                trace = teacher.trace(example, cot.sample_index)
                if trace.fault is not None and not cot.correct:
                    site_loads.append(step_loads[trace.fault.step])
                if cot.error_type == "spurious":
                    spurious += 1
                    compensated += family.work(problem, trace.style, trace.fault).answer == trace.clean.answer
        total = len(examples) * args.samples
        level_wrong.append(wrong / total)
        print(f"| {spec} | {sum(loads) / len(loads):.1f} | {sum(chances) / len(chances):.1%} | {wrong / total:.1%} "
              f"| {spurious / total:.1%} | {compensated} | {spurious - compensated} |")

    print("\n| question load | CoTs | wrong |")
    print("|---|---|---|")
    for load in sorted(wrong_by_load):
        outcomes = wrong_by_load[load]
        print(f"| {load} | {len(outcomes)} | {sum(outcomes) / len(outcomes):.1%} |")
    if site_loads:
        print(f"\nmean load of the step a mistake lands on: {sum(site_loads) / len(site_loads):.2f} "
              f"(mean over steps that can carry one: {sum(fault_site_loads) / len(fault_site_loads):.2f})")
    ratio = level_wrong[-1] / level_wrong[0] if level_wrong[0] else float("inf")
    print(f"wrong share at {args.levels[-1]} over {args.levels[0]}: {ratio:.2f}")


if __name__ == "__main__":
    main()
