"""tracking_shuffled_objects: people trade objects in pairs; who holds what at the end?

Question (BBH format): "Alice, Bob, and Claire are ... Alice has a orange ball, ... First, Alice and Bob swap
balls. Then, ... Finally, ... At the end of the game, Alice has the\nOptions:\n(A) orange ball\n..." -> "(C)".
The solver reads any such story by its structure (the holdings after the first colon, one trade per
"First/Then/Finally" sentence, the person asked about in the last sentence), so BBH's own scenarios parse too.
A logical mistake is a wrong swap: one trade is carried out between the wrong pair.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from ...records import ErrorType, Example
from ..core import (
    Family, Fault, LabParseError, Puzzle, Style, Worked, fault_rng, join_list, letter_of, options_block,
    split_list, split_options,
)

PEOPLE = ("Alice", "Bob", "Claire", "Dave", "Eve", "Fred", "Gertrude", "Hector", "Iris")
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "black", "pink", "brown", "grey")

# (story opening, what each holds, the trade verb phrase, the closing): our own scenarios in BBH's shape
SCENARIOS = (
    ("are sitting around a campfire. At the beginning of the evening, each of them holds a mug",
     "mug", "swap mugs", "At the end of the evening, {p} has the"),
    ("are flying kites in a park. When they arrive, each of them has a kite",
     "kite", "trade kites", "When they leave the park, {p} has the"),
    ("are getting ready for a costume party. At first, each of them wears a hat",
     "hat", "exchange hats", "When the party starts, {p} has the"),
)
ORDINALS = {3: "three", 5: "five", 7: "seven"}


@dataclass(frozen=True)
class Shuffle:
    people: tuple[str, ...]
    items: tuple[str, ...]  # items[i] is what people[i] holds at the start
    swaps: tuple[tuple[int, int], ...]
    asked: int
    choices: tuple[str, ...]


def _bare(item: str) -> str:
    """Compare item names without articles or a final full stop ("a orange ball." ~ "orange ball")."""
    item = item.strip().rstrip(".").strip().lower()
    return re.sub(r"^(a|an|the)\s+", "", item)


class TrackingShuffledObjects(Family):
    name = "tracking_shuffled_objects"
    bbh_subtasks = tuple(f"tracking_shuffled_objects_{w}_objects" for w in ORDINALS.values())
    mistake_types: dict[ErrorType, str] = {
        "logical": "one trade carried out between the wrong pair",
    }
    task_description = "Follow a sequence of pairwise trades and say what one person holds at the end."
    default_difficulty = {"objects": 3, "swaps": 3}
    hard_difficulty = {"objects": 5, "swaps": 5}

    def subtask_for(self, difficulty: dict[str, int]) -> str:
        n = difficulty["objects"]
        return f"tracking_shuffled_objects_{ORDINALS.get(n, str(n))}_objects"

    def generate(self, rng: random.Random, **difficulty: int) -> Puzzle:
        d = self.difficulty(**difficulty)
        n = d["objects"]
        opening, noun, verb, closing = rng.choice(SCENARIOS)
        people = PEOPLE[:n]
        items = tuple(f"{c} {noun}" for c in rng.sample(COLOURS, n))
        swaps = tuple(tuple(rng.sample(range(n), 2)) for _ in range(d["swaps"]))
        asked = rng.randrange(n)
        problem = Shuffle(people, items, swaps, asked, items)
        holdings = join_list([f"{p} has a {it}" for p, it in zip(people, items)])
        trades = []
        for k, (a, b) in enumerate(swaps):
            lead = "First" if k == 0 else "Finally" if k == len(swaps) - 1 else "Then"
            trades.append(f"{lead}, {people[a]} and {people[b]} {verb}.")
        question = (f"{join_list(list(people))} {opening}: {holdings}. \n\n"
                    f"As time goes on, pairs of them trade. {' '.join(trades)} {closing.format(p=people[asked])}\n"
                    + options_block(items))
        return self.puzzle(problem, question, "choice", items)

    def parse(self, example: Example) -> Shuffle:
        stem, choices = split_options(example.question)
        if not choices and example.choices:
            choices = list(example.choices)
        m = re.match(r"\s*(.+?) are ", stem)
        start = stem.find(":")
        if not m or start < 0 or not choices:
            raise LabParseError(f"not a shuffled-objects question: {stem[:80]!r}")
        people = tuple(split_list(m.group(1)))
        holdings_text = stem[start + 1:].split("\n")[0].strip().rstrip(".")
        clauses = split_list(holdings_text)
        if len(clauses) != len(people) or any(not c.startswith(p + " ") for c, p in zip(clauses, people)):
            raise LabParseError(f"cannot read who holds what in {holdings_text[:80]!r}")
        bodies = [c[len(p) + 1:].split() for c, p in zip(clauses, people)]
        shared = 0  # the verb phrase all clauses share ("has a", "is playing", "gets") is not part of the item
        while all(len(b) > shared + 1 for b in bodies) and len({b[shared] for b in bodies}) == 1:
            shared += 1
        items = tuple(" ".join(b[shared:]) for b in bodies)
        index = {p: i for i, p in enumerate(people)}
        swaps = []
        for a, b in re.findall(r"(?:First|Then|Finally), (\w+) and (\w+) ", stem):
            if a not in index or b not in index:
                raise LabParseError(f"a trade between unknown people {a!r} and {b!r}")
            swaps.append((index[a], index[b]))
        last = stem.rstrip().rsplit(".", 1)[-1]
        asked = [p for p in people if re.search(rf"\b{p}\b", last)]
        if len(asked) != 1 or not swaps:
            raise LabParseError(f"cannot tell whom the question asks about: {last!r}")
        for it in items:  # every item must be one of the options
            letter_of(choices, it, _bare)
        return Shuffle(people, items, tuple(swaps), index[asked[0]], tuple(choices))

    def work(self, problem: Shuffle, style: Style, fault: Fault | None = None) -> Worked:
        held = list(problem.items)
        people = problem.people
        steps = [style.pick(("At the start: {h}.", "Initially: {h}."), "start").format(
            h=", ".join(f"{p} has the {it}" for p, it in zip(people, held)))]
        for k, (a, b) in enumerate(problem.swaps, start=1):
            x, y = a, b
            if fault and fault.step == k:
                # the wrong pair trades: one of the two is confused with someone else
                others = [i for i in range(len(people)) if i not in (a, b)]
                rng = fault_rng(fault)
                if others:
                    if rng.random() < 0.5:
                        x = rng.choice(others)
                    else:
                        y = rng.choice(others)
                else:
                    x = y  # with two people the only confusion is to forget the trade
            held[x], held[y] = held[y], held[x]
            state = ", ".join(f"{p} has the {it}" for p, it in zip(people, held))
            steps.append(style.pick(("{a} and {b} swap, so {s}.", "After {a} and {b} trade: {s}."), k).format(
                a=people[a], b=people[b], s=state))
        final = held[problem.asked]
        letter = letter_of(problem.choices, final, _bare)
        steps.append(style.pick(("So at the end {p} has the {it}, which is option {l}.",
                                 "{p} ends up with the {it}, option {l}."), "end").format(
            p=people[problem.asked], it=final, l=letter))
        return Worked(steps, letter)

    def step_loads(self, problem: Shuffle) -> list[float]:
        """A trade costs more the more objects are in play (a third of their number: 1 with three objects); the
        opening inventory and the final reading cost nothing."""
        return [0.0] + [len(problem.people) / 3] * len(problem.swaps) + [0.0]

    def fault_steps(self, problem: Shuffle, error_type: ErrorType) -> list[int]:
        return list(range(1, len(problem.swaps) + 1)) if error_type == "logical" else []
