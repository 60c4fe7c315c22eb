"""multistep_arithmetic_two: two parenthesised groups of small integers joined by one operator.

Question (BBH format): "((-1 + -5 * 8 - 2) - (4 + 3 * -9 - -5)) =" -> "-26". Operands are -9..9, the groups
hold four operands each in BBH. The worked solution evaluates each group (products first, then left to right),
then the outer operation. Mistakes: calculation (a wrong result for one operation) and logical (the order of
operations ignored at one point, adding before multiplying).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from ...records import ErrorType, Example
from ..core import Family, Fault, LabParseError, Puzzle, Style, Worked, fault_rng

OPS = ("+", "-", "*")


@dataclass(frozen=True)
class Arithmetic:
    groups: tuple[tuple[tuple[int, ...], tuple[str, ...]], ...]  # (operands, operators) per group
    outer: str


def _calc(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def _load(a: int, op: str, b: int) -> float:
    """How demanding one operation is: 1, plus 1 for a product, plus 1 when a negative number takes part."""
    return 1.0 + (op == "*") + (a < 0 or b < 0)


def _show(numbers: list[int], ops: list[str]) -> str:
    out = [str(numbers[0])]
    for op, n in zip(ops, numbers[1:]):
        out += [op, str(n)]
    return " ".join(out)


class MultistepArithmetic(Family):
    name = "multistep_arithmetic_two"
    bbh_subtasks = ("multistep_arithmetic_two",)
    mistake_types: dict[ErrorType, str] = {
        "calculation": "a wrong result for one operation",
        "logical": "the order of operations ignored once (adding before multiplying)",
    }
    task_description = "Compute the value of an arithmetic expression with nested parentheses."
    default_difficulty = {"operands": 4, "max_value": 9}
    hard_difficulty = {"operands": 6, "max_value": 9}

    def generate(self, rng: random.Random, **difficulty: int) -> Puzzle:
        d = self.difficulty(**difficulty)
        groups = tuple(
            (tuple(rng.randint(-d["max_value"], d["max_value"]) for _ in range(d["operands"])),
             tuple(rng.choice(OPS) for _ in range(d["operands"] - 1)))
            for _ in range(2)
        )
        problem = Arithmetic(groups, rng.choice(OPS))
        left, right = (_show(list(n), list(o)) for n, o in groups)
        return self.puzzle(problem, f"(({left}) {problem.outer} ({right})) =", "number")

    def parse(self, example: Example) -> Arithmetic:
        m = re.fullmatch(r"\(\((.+)\) ([-+*]) \((.+)\)\) =", example.question.strip())
        if not m:
            raise LabParseError(f"not a two-group arithmetic question: {example.question[:80]!r}")
        groups = []
        for body in (m.group(1), m.group(3)):
            parts = body.split()
            if len(parts) % 2 == 0 or any(p not in OPS for p in parts[1::2]):
                raise LabParseError(f"malformed group {body!r}")
            try:
                groups.append((tuple(int(p) for p in parts[::2]), tuple(parts[1::2])))
            except ValueError:
                raise LabParseError(f"malformed number in group {body!r}") from None
        return Arithmetic(tuple(groups), m.group(2))

    def _operations(self, problem: Arithmetic, fault: Fault | None,
                    style: Style) -> tuple[list[str], int, list[bool], list[float]]:
        """Run every operation; returns the steps, the value, for each step whether a logical mistake could be
        made there, and each step's load (`step_loads`)."""
        steps: list[str] = []
        options: list[bool] = []  # per step: could the order of operations have been ignored here?
        loads: list[float] = []
        results = []
        for g, (numbers, ops) in enumerate(problem.groups):
            numbers, ops = list(numbers), list(ops)
            opener = ("first", "second")[g]
            while ops:
                at = ops.index("*") if "*" in ops else 0
                # where precedence matters: a sum or difference whose right operand is also multiplied
                misread = [i for i in range(len(ops) - 1) if ops[i] != "*" and ops[i + 1] == "*"]
                step = len(steps)
                options.append(bool(misread))
                if fault and fault.step == step and fault.error_type == "logical" and misread:
                    at = misread[0]  # adds or subtracts before multiplying
                loads.append(_load(numbers[at], ops[at], numbers[at + 1]))
                value = _calc(numbers[at], ops[at], numbers[at + 1])
                if fault and fault.step == step and fault.error_type == "calculation":
                    value += fault_rng(fault).choice((-10, -2, -1, 1, 2, 10))
                said = f"{numbers[at]} {ops[at]} {numbers[at + 1]} = {value}"
                numbers[at:at + 2] = [value]
                del ops[at]
                if ops:
                    text = style.pick(("{s}, leaving {r}.", "{s}, so the group is now {r}."), step).format(
                        s=said, r=_show(numbers, ops))
                else:
                    text = style.pick(("{s}, so the {o} group is {v}.", "{s}; the {o} group equals {v}."),
                                      step).format(s=said, o=opener, v=value)
                if len(ops) + 1 == len(problem.groups[g][1]):  # the group's first operation introduces it
                    text = style.pick(("In the {o} group, ", "Inside the {o} parentheses, "), step, "intro").format(
                        o=opener) + text
                steps.append(text)
            if not problem.groups[g][1]:
                steps.append(f"The {opener} group is just {numbers[0]}.")
                options.append(False)
                loads.append(0.0)
            results.append(numbers[0])
        step = len(steps)
        value = _calc(results[0], problem.outer, results[1])
        if fault and fault.step == step and fault.error_type == "calculation":
            value += fault_rng(fault).choice((-10, -2, -1, 1, 2, 10))
        options.append(False)
        loads.append(_load(results[0], problem.outer, results[1]))
        steps.append(style.pick(("Then {a} {o} {b} = {v}.", "Combining the groups: {a} {o} {b} = {v}."),
                                step).format(a=results[0], o=problem.outer, b=results[1], v=value))
        return steps, value, options, loads

    def work(self, problem: Arithmetic, style: Style, fault: Fault | None = None) -> Worked:
        steps, value, _, _ = self._operations(problem, fault, style)
        return Worked(steps, str(value))

    def step_loads(self, problem: Arithmetic) -> list[float]:
        return self._operations(problem, None, Style(0))[3]

    def fault_steps(self, problem: Arithmetic, error_type: ErrorType) -> list[int]:
        steps, _, can_reorder, _ = self._operations(problem, None, Style(0))
        if error_type == "calculation":
            return [i for i, s in enumerate(steps) if "=" in s]
        if error_type == "logical":
            return [i for i, ok in enumerate(can_reorder) if ok]
        return []
