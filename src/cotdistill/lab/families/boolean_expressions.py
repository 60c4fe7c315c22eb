"""boolean_expressions: evaluate an expression over True/False with not, and, or and parentheses.

Question (BBH format): "not ( True ) and ( True ) is" -> "False". The worked solution reduces one operator at a
time (innermost parentheses first, then not, and, or, as Python does) and shows the shrinking expression. A
logical mistake applies a rule wrongly at one reduction (a dropped negation, or and/or evaluated the wrong way);
a knowledge mistake is a wrong truth-table fact, "True or True" taken as False (or read as exclusive).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ...records import ErrorType, Example
from ..core import Family, Fault, LabParseError, Puzzle, Style, Worked

VALUES = ("True", "False")
TOKENS = {"True", "False", "not", "and", "or", "(", ")"}
XOR_SITE = ["True", "or", "True"]  # where reading "or" as exclusive changes a reduction


@dataclass(frozen=True)
class Expression:
    tokens: tuple[str, ...]


def _random_tree(rng: random.Random, operators: int) -> list[str]:
    """Tokens of a random expression with exactly `operators` operators, parenthesised where precedence needs it."""
    if operators == 0:
        return [rng.choice(VALUES)]
    op = rng.choice(("not", "and", "or"))
    if op == "not":
        inner = _random_tree(rng, operators - 1)
        wrap = len(inner) > 2 and inner[0] != "not" or rng.random() < 0.25
        return ["not", "(", *inner, ")"] if wrap else ["not", *inner]
    left_ops = rng.randint(0, operators - 1)
    sides = [_random_tree(rng, left_ops), _random_tree(rng, operators - 1 - left_ops)]
    out: list[str] = []
    for i, side in enumerate(sides):
        binary_inside = "and" in side or "or" in side
        # parentheses keep the tree's grouping; an "or" inside an "and" needs them, the rest is random variety
        needs = binary_inside and (op == "and" or i == 1)
        out += ["(", *side, ")"] if needs or (len(side) > 1 and rng.random() < 0.3) else side
        if i == 0:
            out.append(op)
    return out


def _reduce_once(tokens: list[str]) -> tuple[int, int, list[str]] | None:
    """Find the next operator to reduce: (start, end) of the sub-expression in `tokens`, or None when done."""
    lo, hi = 0, len(tokens)
    for i, tok in enumerate(tokens):  # innermost parenthesis: a "(" whose group holds no other "("
        if tok == "(":
            lo = i + 1
        elif tok == ")":
            hi = i
            break
    else:
        lo = 0
    region = tokens[lo:hi]
    for i in range(len(region) - 1):
        if region[i] == "not" and region[i + 1] in VALUES:
            return lo + i, lo + i + 2, region[i:i + 2]
    for op in ("and", "or"):
        for i in range(1, len(region) - 1):
            if region[i] == op and region[i - 1] in VALUES and region[i + 1] in VALUES:
                return lo + i - 1, lo + i + 2, region[i - 1:i + 2]
    return None


def _drop_bare_parentheses(tokens: list[str]) -> list[str]:
    changed = True
    while changed:
        changed = False
        for i in range(len(tokens) - 2):
            if tokens[i] == "(" and tokens[i + 1] in VALUES and tokens[i + 2] == ")":
                tokens = tokens[:i] + [tokens[i + 1]] + tokens[i + 3:]
                changed = True
                break
    return tokens


def _reductions(tokens: list[str], wrong_here: Callable[[int, list[str]], bool] = lambda step, sub: False
                ) -> Iterator[tuple[list[str], bool, list[str]]]:
    """The reductions in order, each (sub-expression, its value, the expression after it); `wrong_here(step, sub)`
    says where a mistake inverts the value."""
    step = 0
    while (found := _reduce_once(tokens)) is not None:
        start, end, sub = found
        value = _apply(sub) != wrong_here(step, sub)
        tokens = _drop_bare_parentheses(tokens[:start] + [str(value)] + tokens[end:])
        yield sub, value, tokens
        step += 1


def _apply(sub: list[str]) -> bool:
    if sub[0] == "not":
        return sub[1] != "True"
    a, op, b = sub[0] == "True", sub[1], sub[2] == "True"
    return (a and b) if op == "and" else (a or b)


class BooleanExpressions(Family):
    name = "boolean_expressions"
    bbh_subtasks = ("boolean_expressions",)
    mistake_types: dict[ErrorType, str] = {
        "logical": "a rule applied the wrong way round at one reduction (a dropped not, and/or confused)",
        "knowledge": "a wrong truth-table fact: True or True taken as False (or read as exclusive)",
    }
    task_description = "Work out whether a boolean expression is True or False."
    default_difficulty = {"operators": 4}
    hard_difficulty = {"operators": 7}

    def generate(self, rng: random.Random, **difficulty: int) -> Puzzle:
        operators = self.difficulty(**difficulty)["operators"]
        problem = Expression(tuple(_random_tree(rng, operators)))
        return self.puzzle(problem, " ".join(problem.tokens) + " is", "label", VALUES)

    def parse(self, example: Example) -> Expression:
        text = example.question.strip()
        if not text.endswith(" is"):
            raise LabParseError(f"not a boolean expression question: {text[:80]!r}")
        tokens = tuple(text[: -len(" is")].split())
        if not tokens or not set(tokens) <= TOKENS:
            raise LabParseError(f"boolean expression with unknown tokens: {text[:80]!r}")
        return Expression(tokens)

    def work(self, problem: Expression, style: Style, fault: Fault | None = None) -> Worked:
        def wrong_here(step: int, sub: list[str]) -> bool:  # a rule applied the wrong way round, or or taken as xor
            return fault is not None and fault.step == step and (fault.error_type == "logical" or sub == XOR_SITE)

        tokens = _drop_bare_parentheses(list(problem.tokens))
        steps: list[str] = []
        for sub, value, tokens in _reductions(tokens, wrong_here):
            said = " ".join(sub)
            if len(tokens) == 1:
                steps.append(style.pick(("{s} is {v}.", "Finally, {s} gives {v}."), len(steps)).format(
                    s=said, v=value))
            else:
                steps.append(style.pick((
                    "{s} is {v}, so the expression becomes {e}.",
                    "{s} gives {v}; now we have {e}.",
                ), len(steps)).format(s=said, v=value, e=" ".join(tokens)))
        if len(tokens) != 1 or tokens[0] not in VALUES:
            raise LabParseError(f"malformed boolean expression: {' '.join(problem.tokens)!r}")
        if not steps:
            steps.append(f"The expression is just {tokens[0]}.")
        return Worked(steps, tokens[0])

    def fault_steps(self, problem: Expression, error_type: ErrorType) -> list[int]:
        if error_type == "logical":
            return list(range(len(self.work(problem, Style(0)).steps)))
        if error_type != "knowledge":
            return []
        clean = _reductions(_drop_bare_parentheses(list(problem.tokens)))  # its "True or True" reductions
        return [step for step, (sub, _, _) in enumerate(clean) if sub == XOR_SITE]
