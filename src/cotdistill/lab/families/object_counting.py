"""object_counting: count the things of one kind in a list of possessions.

Question (BBH format): "I have a flute, a piano, two violins, and a cabbage. How many musical instruments do I
have?" -> "4". The solver goes through the list keeping a running total. Mistakes: knowledge (an item put in
the wrong category, e.g. a cabbage counted as an instrument or a plum left out of the fruits) and calculation
(a wrong running total).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from ...records import ErrorType, Example
from ..core import NUMBER_WORDS, Family, Fault, LabParseError, Puzzle, Style, Worked, fault_rng, join_list, split_list

# singular -> plural, per category; "objects" are household things
CATEGORIES: dict[str, dict[str, str]] = {
    "fruits": {
        "apple": "apples", "banana": "bananas", "blackberry": "blackberries", "grape": "grapes",
        "nectarine": "nectarines", "orange": "oranges", "peach": "peaches", "plum": "plums",
        "raspberry": "raspberries", "strawberry": "strawberries", "pear": "pears", "mango": "mangoes",
        "cherry": "cherries", "lemon": "lemons", "fig": "figs", "kiwi": "kiwis",
    },
    "vegetables": {
        "cabbage": "cabbages", "carrot": "carrots", "cauliflower": "cauliflowers", "garlic": "garlics",
        "head of broccoli": "heads of broccoli", "lettuce head": "lettuce heads", "onion": "onions",
        "potato": "potatoes", "stalk of celery": "stalks of celery", "yam": "yams", "leek": "leeks",
        "turnip": "turnips", "beet": "beets", "radish": "radishes", "zucchini": "zucchinis",
    },
    "animals": {
        "bear": "bears", "cat": "cats", "chicken": "chickens", "cow": "cows", "dog": "dogs",
        "donkey": "donkeys", "duck": "ducks", "fish": "fish", "frog": "frogs", "goat": "goats",
        "mouse": "mice", "pig": "pigs", "rabbit": "rabbits", "snail": "snails", "snake": "snakes",
        "horse": "horses", "sheep": "sheep", "owl": "owls", "goose": "geese",
    },
    "musical instruments": {
        "accordion": "accordions", "clarinet": "clarinets", "drum": "drums", "flute": "flutes",
        "piano": "pianos", "trombone": "trombones", "trumpet": "trumpets", "violin": "violins",
        "cello": "cellos", "harp": "harps", "guitar": "guitars", "tuba": "tubas", "banjo": "banjos",
    },
    "objects": {
        "bed": "beds", "car": "cars", "chair": "chairs", "couch": "couches", "fridge": "fridges",
        "lamp": "lamps", "microwave": "microwaves", "oven": "ovens", "stove": "stoves", "table": "tables",
        "toaster": "toasters", "kettle": "kettles", "desk": "desks", "mirror": "mirrors", "shelf": "shelves",
    },
}
SINGULAR_OF = {form: (cat, sing) for cat, words in CATEGORIES.items()
               for sing, plural in words.items() for form in (sing, plural)}
ONE_OF = {"fruits": "a fruit", "vegetables": "a vegetable", "animals": "an animal",
          "musical instruments": "a musical instrument", "objects": "an object"}


@dataclass(frozen=True)
class Inventory:
    items: tuple[tuple[int, str], ...]  # (how many, the word as written)
    category: str


def _belongs(word: str, category: str) -> bool:
    # every thing owned is an object; BBH asks "objects" only about household lists, so both readings agree
    return category == "objects" or SINGULAR_OF[word][0] == category


def _phrase(count: int, word: str) -> str:
    if count == 1:
        return ("an " if word[0] in "aeiou" else "a ") + word
    return f"{NUMBER_WORDS[count]} {word}"


class ObjectCounting(Family):
    name = "object_counting"
    bbh_subtasks = ("object_counting",)
    mistake_types: dict[ErrorType, str] = {
        "calculation": "a wrong running total",
        "knowledge": "an item put in the wrong category",
    }
    task_description = "Count how many things of a given kind are in a list."
    default_difficulty = {"items": 6, "max_count": 3}
    hard_difficulty = {"items": 10, "max_count": 4}

    def generate(self, rng: random.Random, **difficulty: int) -> Puzzle:
        d = self.difficulty(**difficulty)
        category = rng.choice(tuple(CATEGORIES))
        pool = list(CATEGORIES[category])
        if category != "objects":  # distractors from other kinds
            others = [w for c, ws in CATEGORIES.items() if c not in (category, "objects") for w in ws]
            pool += rng.sample(others, min(len(others), d["items"] // 2))
        chosen = rng.sample(pool, min(d["items"], len(pool)))
        items = []
        for word in chosen:
            count = 1 if rng.random() < 0.6 else rng.randint(2, max(2, d["max_count"]))
            cat = SINGULAR_OF[word][0]
            items.append((count, word if count == 1 else CATEGORIES[cat][word]))
        problem = Inventory(tuple(items), category)
        listing = join_list([_phrase(c, w) for c, w in items])
        question = f"I have {listing}. How many {category} do I have?"
        return self.puzzle(problem, question, "number")

    def parse(self, example: Example) -> Inventory:
        m = re.fullmatch(r"I have (.+)\. How many (.+?) do I have\?", example.question.strip())
        if not m or m.group(2) not in CATEGORIES:
            raise LabParseError(f"not an object counting question: {example.question[:80]!r}")
        items = []
        for part in split_list(m.group(1)):
            head, _, rest = part.partition(" ")
            count = 1 if head in ("a", "an") else NUMBER_WORDS.index(head) if head in NUMBER_WORDS else 0
            if not count or rest not in SINGULAR_OF:
                raise LabParseError(f"object counting: cannot read {part!r}")
            items.append((count, rest))
        return Inventory(tuple(items), m.group(2))

    def work(self, problem: Inventory, style: Style, fault: Fault | None = None) -> Worked:
        kind = ONE_OF[problem.category]
        total = 0
        steps = []
        for k, (count, word) in enumerate(problem.items):
            member = _belongs(word, problem.category)
            wrong = fault is not None and fault.step == k
            if wrong and fault.error_type == "knowledge":
                member = not member  # the item filed under the wrong kind
            if not member:
                steps.append(style.pick(("{p} is not {k}, skip it.", "{p}: not {k}."), k).format(
                    p=_phrase(count, word), k=kind))
                continue
            total += count
            if wrong and fault.error_type == "calculation":
                total += fault_rng(fault).choice((-1, 1, 2))
            steps.append(style.pick(("{p}: {c}, total {t}.", "{p} adds {c}, so {t} so far."), k).format(
                p=_phrase(count, word), c=count, t=total))
        steps.append(style.pick(("That makes {t} {c} in all.", "So I have {t} {c}."), "end").format(
            t=total, c=problem.category))
        return Worked(steps, str(total))

    def step_loads(self, problem: Inventory) -> list[float]:
        """Every item must be classified (1); adding several of a kind to the total costs 1 more."""
        loads = [1.0 + (count > 1 and _belongs(word, problem.category)) for count, word in problem.items]
        return loads + [0.0]  # the closing sentence restates the total

    def fault_steps(self, problem: Inventory, error_type: ErrorType) -> list[int]:
        if error_type == "knowledge":
            return list(range(len(problem.items)))
        if error_type == "calculation":
            return [k for k, (_, w) in enumerate(problem.items) if _belongs(w, problem.category)]
        return []
