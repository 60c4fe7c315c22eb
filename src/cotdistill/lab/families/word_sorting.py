"""word_sorting: put a list of words in alphabetical order.

Question (BBH format): "Sort the following words alphabetically: List: oven costume counterpart" -> "costume
counterpart oven". The solver inserts the words one at a time into a growing sorted list. Mistakes: knowledge
(two letters believed to be in the wrong alphabetical order, so a word lands one place off) and logical (a word
appended at the end without comparing it).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ...records import ErrorType, Example
from ..core import Family, Fault, Puzzle, Style, Worked, tokens_after

PREFIX = "Sort the following words alphabetically: List:"
VOCABULARY = (
    "anchor apple arrow autumn badge bakery balloon basket beacon blanket bottle branch bridge bucket butter "
    "cabin camera candle canyon carpet castle cedar chalk cherry circle cliff clock cloud cobalt comet copper "
    "cotton crater crystal dagger desert dolphin donkey dragon drum eagle echo elbow ember engine falcon feather "
    "fence fiddle flame forest fossil fountain garden garlic ginger glacier globe grain gravel hammer harbor "
    "hazel helmet honey island ivory jacket jelly jungle kettle kitten ladder lantern lemon lily linen lobster "
    "magnet maple marble meadow mirror mitten monkey needle nickel novel oak ocean olive orbit otter paddle "
    "panda pebble pepper pillow planet pocket pony puzzle quartz quill rabbit radish raven ribbon river rocket "
    "saddle salmon scarf shadow shovel silver spider spoon squirrel stone sugar summit tiger timber tulip "
    "tunnel turnip umbrella valley velvet violet wagon walnut whistle willow window wizard yarn yogurt zebra "
    "zephyr"
).split()


@dataclass(frozen=True)
class WordList:
    words: tuple[str, ...]


class WordSorting(Family):
    name = "word_sorting"
    bbh_subtasks = ("word_sorting",)
    mistake_types: dict[ErrorType, str] = {
        "knowledge": "two letters believed in the wrong order, so a word lands one place off",
        "logical": "a word appended at the end without comparing it",
    }
    task_description = "Sort a list of words in alphabetical order."
    default_difficulty = {"words": 5}
    hard_difficulty = {"words": 10}

    def generate(self, rng: random.Random, **difficulty: int) -> Puzzle:
        n = self.difficulty(**difficulty)["words"]
        problem = WordList(tuple(rng.sample(VOCABULARY, n)))
        return self.puzzle(problem, f"{PREFIX} {' '.join(problem.words)}", "text")

    def parse(self, example: Example) -> WordList:
        return WordList(tokens_after(example.question, "List:", self.name))

    @staticmethod
    def _slot(placed: list[str], word: str) -> int:
        return sum(1 for w in placed if w <= word)  # after every word that sorts before or equal to it

    def work(self, problem: WordList, style: Style, fault: Fault | None = None) -> Worked:
        placed: list[str] = []
        steps: list[str] = []
        for k, word in enumerate(problem.words):
            slot = self._slot(placed, word)
            if fault and fault.step == k:
                if fault.error_type == "knowledge":
                    # a letter-order slip against a neighbour: the word lands one place off
                    slot = slot - 1 if slot > 0 and (slot == len(placed) or fault.salt % 2) else slot + 1
                else:
                    slot = len(placed)  # appended without comparing
            placed.insert(slot, word)
            if k == 0:
                steps.append(style.pick(("Start with {w}.", "Begin the list with {w}."), k).format(w=word))
            else:
                steps.append(style.pick(("Insert {w}: {l}.", "Adding {w} gives {l}."), k).format(
                    w=word, l=" ".join(placed)))
        answer = " ".join(placed)
        steps.append(style.pick(("The sorted list is {a}.", "In order: {a}."), "end").format(a=answer))
        return Worked(steps, answer)

    def fault_steps(self, problem: WordList, error_type: ErrorType) -> list[int]:
        placed: list[str] = []
        sites = []
        for k, word in enumerate(problem.words):
            slot = self._slot(placed, word)
            if k > 0 and (error_type == "knowledge" or (error_type == "logical" and slot < len(placed))):
                sites.append(k)
            placed.insert(slot, word)
        return sites
