"""navigate: follow walking instructions and decide whether they lead back to the starting point.

Question (BBH format): "If you follow these instructions, do you return to the starting point? Take 1 step.
Turn around. Take 1 step.\nOptions:\n- Yes\n- No" -> "Yes". Two kinds of instruction sets exist, as in BBH:
"Always face forward." with steps forward/backward/left/right, and turning ones (Turn left/right/around).
The solver tracks (x, y) and the facing direction. Mistakes: calculation (a wrong coordinate after a move) and
logical (a turn taken the wrong way).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from ...records import ErrorType, Example
from ..core import Family, Fault, LabParseError, Puzzle, Style, Worked, fault_rng, split_options

PREFIX = "If you follow these instructions, do you return to the starting point?"
HEADINGS = ("north", "east", "south", "west")  # facing index 0..3, clockwise
VECTORS = {"north": (0, 1), "east": (1, 0), "south": (0, -1), "west": (-1, 0)}
RELATIVE = {"forward": 0, "right": 1, "backward": 2, "left": 3}  # quarter turns clockwise from the facing
TURNS = {"right": 1, "around": 2, "left": 3}


@dataclass(frozen=True)
class Walk:
    face_forward: bool
    moves: tuple[tuple[str, int, str], ...]  # ("turn", 0, "left") or ("move", n, "forward"|...|"")


def _move_sentence(n: int, way: str) -> str:
    unit = "step" if n == 1 else "steps"
    return f"Take {n} {unit}" + (f" {way}" if way else "") + "."


class Navigate(Family):
    name = "navigate"
    bbh_subtasks = ("navigate",)
    mistake_types: dict[ErrorType, str] = {
        "calculation": "a wrong coordinate after a move",
        "logical": "a turn taken the wrong way",
    }
    task_description = "Follow walking instructions and decide whether you end where you started."
    default_difficulty = {"instructions": 5, "max_steps": 10}
    hard_difficulty = {"instructions": 9, "max_steps": 10}

    def generate(self, rng: random.Random, **difficulty: int) -> Puzzle:
        d = self.difficulty(**difficulty)
        face_forward = rng.random() < 0.5
        moves = self._returning_moves(rng, face_forward, d["instructions"], d["max_steps"])
        if rng.random() < 0.5:
            # a near miss: one move is a little too long or short, so the walk ends close to the start
            at = rng.choice([i for i, m in enumerate(moves) if m[0] == "move"])
            kind, n, way = moves[at]
            moves[at] = (kind, max(1, n + rng.choice((-3, -2, -1, 1, 2, 3))) if n > 1 else n + rng.randint(1, 3),
                         way)
        problem = Walk(face_forward, tuple(moves))
        body = " ".join(("Always face forward.",) * face_forward + tuple(
            f"Turn {w}." if kind == "turn" else _move_sentence(n, w) for kind, n, w in problem.moves))
        return self.puzzle(problem, f"{PREFIX} {body}\nOptions:\n- Yes\n- No", "label", ["Yes", "No"])

    def _returning_moves(self, rng: random.Random, face_forward: bool, count: int,
                         max_steps: int) -> list[tuple[str, int, str]]:
        """A walk of about `count` instructions that ends where it started."""
        for _ in range(100):
            moves: list[tuple[str, int, str]] = []
            for _ in range(max(count - 2, 1)):
                if face_forward:
                    moves.append(("move", rng.randint(1, max_steps), rng.choice(tuple(RELATIVE))))
                elif rng.random() < 0.35 and moves and moves[-1][0] == "move":
                    moves.append(("turn", 0, rng.choice(tuple(TURNS))))
                else:
                    moves.append(("move", rng.randint(1, max_steps), ""))
            x, y, facing = self._track(Walk(face_forward, tuple(moves)))
            if face_forward:
                # undo x with left/right and y with forward/backward (the facing never changes)
                if x:
                    moves.append(("move", abs(x), "left" if x > 0 else "right"))
                if y:
                    moves.append(("move", abs(y), "backward" if y > 0 else "forward"))
            elif (x == 0) != (y == 0):
                # on one axis: face back toward the start, then walk the distance
                toward = {(1, 0): "east", (-1, 0): "west", (0, 1): "north", (0, -1): "south"}[
                    ((x < 0) - (x > 0), (y < 0) - (y > 0))]
                turn = (HEADINGS.index(toward) - facing) % 4
                if turn:
                    moves.append(("turn", 0, {1: "right", 2: "around", 3: "left"}[turn]))
                moves.append(("move", abs(x + y), ""))
            elif x or y:
                continue  # off both axes: a turning walk cannot come back in two instructions; draw again
            if any(m[0] == "move" for m in moves) and len(moves) <= count + 1:
                return moves
        raise AssertionError("navigate: could not draw a returning walk")  # not reached for sane settings

    def _track(self, walk: Walk) -> tuple[int, int, int]:
        x = y = facing = 0
        for kind, n, way in walk.moves:
            if kind == "turn":
                facing = (facing + TURNS[way]) % 4
            else:
                dx, dy = VECTORS[HEADINGS[(facing + RELATIVE[way or "forward"]) % 4]]
                x, y = x + n * dx, y + n * dy
        return x, y, facing

    def parse(self, example: Example) -> Walk:
        stem, _ = split_options(example.question)
        text = stem.strip()
        if text.startswith(PREFIX):
            text = text[len(PREFIX):]
        moves: list[tuple[str, int, str]] = []
        face_forward = False
        for sentence in filter(None, (s.strip() for s in text.split("."))):
            if sentence == "Always face forward":
                face_forward = True
            elif m := re.fullmatch(r"Turn (left|right|around)", sentence):
                moves.append(("turn", 0, m.group(1)))
            elif m := re.fullmatch(r"Take (\d+) steps?(?: (forward|backward|left|right))?", sentence):
                moves.append(("move", int(m.group(1)), m.group(2) or ""))
            else:
                raise LabParseError(f"navigate: unknown instruction {sentence!r}")
        if not moves:
            raise LabParseError("navigate: no instructions")
        return Walk(face_forward, tuple(moves))

    def work(self, problem: Walk, style: Style, fault: Fault | None = None) -> Worked:
        x = y = facing = 0
        steps = [style.pick(("Start at (0, 0) facing north.", "We begin at (0, 0), facing north."), "start")]
        for k, (kind, n, way) in enumerate(problem.moves, start=1):
            wrong = fault is not None and fault.step == k
            if kind == "turn":
                quarter = TURNS[way]
                if wrong:  # left for right, or a turn around forgotten
                    quarter = {1: 3, 3: 1, 2: 0}[quarter]
                facing = (facing + quarter) % 4
                steps.append(style.pick(("Turn {w}: now facing {h}.", "Turning {w}, we face {h}."), k).format(
                    w=way, h=HEADINGS[facing]))
                continue
            heading = HEADINGS[(facing + RELATIVE[way or "forward"]) % 4]
            dx, dy = VECTORS[heading]
            nx, ny = x + n * dx, y + n * dy
            if wrong:
                rng = fault_rng(fault)
                # a small slip, or one that cancels the final offset on this axis (a near miss "returns home")
                final_x, final_y, _ = self._track(problem)
                slip = rng.choice((-2, -1, 1, 2)) if rng.random() < 0.5 else -(final_x if dx else final_y)
                nx, ny = (nx + slip, ny) if dx else (nx, ny + slip)
            steps.append(style.pick(("{n} {u} {h}: ({x}, {y}).", "Moving {n} {u} {h} takes us to ({x}, {y})."),
                                    k).format(n=n, u="step" if n == 1 else "steps", h=heading, x=nx, y=ny))
            x, y = nx, ny
        home = x == 0 and y == 0
        steps.append(style.pick((
            "We end at ({x}, {y}), {v} the starting point.",
            "The final position is ({x}, {y}), {v} the start.",
        ), "end").format(x=x, y=y, v="which is" if home else "which is not"))
        return Worked(steps, "Yes" if home else "No")

    def fault_steps(self, problem: Walk, error_type: ErrorType) -> list[int]:
        kind_for = {"calculation": "move", "logical": "turn"}.get(error_type)
        return [k for k, (kind, _, _) in enumerate(problem.moves, start=1) if kind == kind_for]
