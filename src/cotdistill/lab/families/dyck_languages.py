"""dyck_languages: close the brackets still open at the end of a sequence.

Question (BBH format): "Complete the rest of the sequence, making sure that the parentheses are closed properly.
Input: [ { [" -> "] } ]". The solver reads the symbols one at a time keeping a stack of open brackets, then
closes the stack from the top. Mistakes: knowledge (a wrong bracket pairing when closing, e.g. "{" closed by
"]") and logical (an opening bracket read but not put on the stack).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ...records import ErrorType, Example
from ..core import Family, Fault, LabParseError, Puzzle, Style, Worked, fault_rng, tokens_after

PREFIX = "Complete the rest of the sequence, making sure that the parentheses are closed properly. Input:"
PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}
CLOSERS = {v: k for k, v in PAIRS.items()}


@dataclass(frozen=True)
class Brackets:
    symbols: tuple[str, ...]


def _stack_text(stack: list[str]) -> str:
    return " ".join(stack) if stack else "empty"


class DyckLanguages(Family):
    name = "dyck_languages"
    bbh_subtasks = ("dyck_languages",)
    mistake_types: dict[ErrorType, str] = {
        "knowledge": "a wrong bracket pairing when closing ({ closed by ])",
        "logical": "an opening bracket read but not pushed on the stack",
    }
    task_description = "Close every bracket that is still open, in the right order."
    default_difficulty = {"length": 8, "open_at_end": 3, "kinds": 4}
    hard_difficulty = {"length": 16, "open_at_end": 4, "kinds": 4}

    def generate(self, rng: random.Random, **difficulty: int) -> Puzzle:
        d = self.difficulty(**difficulty)
        openers = list(PAIRS)[: max(1, min(4, d["kinds"]))]
        need = max(1, min(d["open_at_end"], d["length"]))
        if (d["length"] - need) % 2:  # a walk of +-1 steps ends at a size of the length's parity
            need += 1 if need < d["length"] else -1
        stack: list[str] = []
        symbols: list[str] = []
        for position in range(d["length"]):
            left = d["length"] - position
            if len(stack) - need == left:
                close = True  # only closing still reaches the wanted number of open brackets
            elif need - len(stack) == left or not stack:
                close = False
            else:
                close = rng.random() < 0.45
            if close:
                symbols.append(PAIRS[stack.pop()])
            else:
                stack.append(rng.choice(openers))
                symbols.append(stack[-1])
        problem = Brackets(tuple(symbols))
        return self.puzzle(problem, f"{PREFIX} {' '.join(symbols)}", "text")

    def parse(self, example: Example) -> Brackets:
        symbols = tokens_after(example.question, "Input:", self.name)
        if any(s not in PAIRS and s not in CLOSERS for s in symbols):
            raise LabParseError(f"Dyck question with unknown symbols: {example.question[-80:]!r}")
        return Brackets(symbols)

    def work(self, problem: Brackets, style: Style, fault: Fault | None = None) -> Worked:
        stack: list[str] = []
        steps = [style.pick(("Read the symbols one by one and keep a stack of the open ones.",
                             "Go through the sequence, tracking the open brackets."), "start")]
        for k, symbol in enumerate(problem.symbols, start=1):
            if symbol in PAIRS:
                if not (fault and fault.step == k and fault.error_type == "logical"):
                    stack.append(symbol)  # the logical mistake: the bracket is read but never pushed
            elif stack:
                stack.pop()
            steps.append(style.pick(("{s} ; stack: {t}", "{s} gives stack {t}"), k).format(
                s=symbol, t=_stack_text(stack)) + ".")
        closing = []
        close_step = len(problem.symbols) + 1
        for depth, opener in enumerate(reversed(stack)):
            closer = PAIRS[opener]
            if fault and fault.step == close_step + depth and fault.error_type == "knowledge":
                closer = fault_rng(fault).choice([c for c in CLOSERS if c != closer])
            closing.append(closer)
        if not closing:
            steps.append("Nothing is left open.")
        for depth, closer in enumerate(closing):
            opener = list(reversed(stack))[depth]
            steps.append(style.pick(("{o} is closed by {c}.", "Close {o} with {c}."), "close", depth).format(
                o=opener, c=closer))
        answer = " ".join(closing)
        steps.append(style.pick(("So the rest of the sequence is {a}.", "The missing part is {a}."), "end").format(
            a=answer or "nothing"))
        return Worked(steps, answer or "nothing")

    def fault_steps(self, problem: Brackets, error_type: ErrorType) -> list[int]:
        if error_type == "logical":
            return [k for k, s in enumerate(problem.symbols, start=1) if s in PAIRS]
        if error_type == "knowledge":
            stack: list[str] = []
            for s in problem.symbols:
                if s in PAIRS:
                    stack.append(s)
                elif stack:
                    stack.pop()
            start = len(problem.symbols) + 1
            return list(range(start, start + len(stack)))
        return []
