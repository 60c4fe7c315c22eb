"""web_of_lies: a chain of people, each saying whether the previous one tells the truth.

Question (BBH format): "Question: Fidel lies. Jerry says Fidel tells the truth. ... Does Raymond tell the truth?"
Answer "Yes" / "No". A logical mistake is a dropped negation: one speaker's status is inferred the wrong way
round, and every later inference inherits the flip.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from ...records import ErrorType, Example
from ..core import Family, Fault, LabParseError, Puzzle, Style, Worked

NAMES = (
    "Amara Bruno Celia Dario Elena Farah Gideon Hana Ilya Jonas Kira Lionel Mira Nadia Oskar Priya Quinn Rosa "
    "Soren Talia Umar Vera Wendell Xenia Yusuf Zora Anton Bettina Cyrus Delphine Emil Freya Gustav Imogen "
    "Joaquin Leona Matteo Noor Orla Petra"
).split()

STATUS = {True: "tells the truth", False: "lies"}


@dataclass(frozen=True)
class Chain:
    names: tuple[str, ...]
    first_truthful: bool
    claims: tuple[bool, ...]  # claims[i]: person i+1 says person i tells the truth (True) or lies (False)


class WebOfLies(Family):
    name = "web_of_lies"
    bbh_subtasks = ("web_of_lies",)
    mistake_types: dict[ErrorType, str] = {
        "logical": "a dropped negation: one speaker's status inferred the wrong way round",
    }
    task_description = ("Follow a chain of people vouching for or accusing one another and decide whether the last "
                        "one tells the truth.")
    default_difficulty = {"people": 5}
    hard_difficulty = {"people": 8}

    def generate(self, rng: random.Random, **difficulty: int) -> Puzzle:
        people = self.difficulty(**difficulty)["people"]
        chain = Chain(
            names=tuple(rng.sample(NAMES, people)),
            first_truthful=rng.random() < 0.5,
            claims=tuple(rng.random() < 0.5 for _ in range(people - 1)),
        )
        sentences = [f"{chain.names[0]} {STATUS[chain.first_truthful]}."]
        for i, claim in enumerate(chain.claims):
            sentences.append(f"{chain.names[i + 1]} says {chain.names[i]} {STATUS[claim]}.")
        question = "Question: " + " ".join(sentences) + f" Does {chain.names[-1]} tell the truth?"
        return self.puzzle(chain, question, "label", ["Yes", "No"])

    def parse(self, example: Example) -> Chain:
        text = example.question.strip()
        head = re.match(r"(?:Question:\s*)?(\w+) (tells the truth|lies)\.", text)
        ask = re.search(r"Does (\w+) tell the truth\?\s*$", text)
        if not head or not ask:
            raise LabParseError(f"not a web_of_lies question: {text[:80]!r}")
        names = [head.group(1)]
        claims = []
        for speaker, about, status in re.findall(r"(\w+) says (\w+) (tells the truth|lies)\.", text):
            if about != names[-1]:
                raise LabParseError(f"web_of_lies: {speaker} speaks about {about}, expected {names[-1]}")
            names.append(speaker)
            claims.append(status == STATUS[True])
        if ask.group(1) != names[-1]:
            raise LabParseError(f"web_of_lies: the question asks about {ask.group(1)}, not the last speaker")
        return Chain(tuple(names), head.group(2) == STATUS[True], tuple(claims))

    def work(self, problem: Chain, style: Style, fault: Fault | None = None) -> Worked:
        names = problem.names
        truthful = problem.first_truthful
        steps = [style.pick(("{a} {s}.", "We know that {a} {s}.", "To begin, {a} {s}."), 0).format(
            a=names[0], s=STATUS[truthful])]
        for i, claim in enumerate(problem.claims, start=1):
            speaker_truthful = claim == truthful  # a true claim from a truth-teller, or a false one from a liar
            if fault and fault.step == i:
                speaker_truthful = not speaker_truthful  # the dropped negation
            template = style.pick((
                "{b} says {a} {c}. Since {a} {s}, {b} {t}.",
                "{b} claims that {a} {c}; {a} {s}, so {b} {t}.",
                "Next, {b} says {a} {c}. As {a} {s}, {b} {t}.",
            ), i)
            steps.append(template.format(a=names[i - 1], b=names[i], c=STATUS[claim], s=STATUS[truthful],
                                         t=STATUS[speaker_truthful]))
            truthful = speaker_truthful
        return Worked(steps, "Yes" if truthful else "No")

    def step_loads(self, problem: Chain) -> list[float]:
        """Each inference costs 1, and 1 more for every negation in it: an accusation ("says X lies") and a
        liar as the one spoken about ("Since X lies"); the opening statement is given."""
        loads = [0.0]
        truthful = problem.first_truthful
        for claim in problem.claims:
            loads.append(1.0 + (not claim) + (not truthful))
            truthful = claim == truthful
        return loads

    def fault_steps(self, problem: Chain, error_type: ErrorType) -> list[int]:
        return list(range(1, len(problem.names))) if error_type == "logical" else []
