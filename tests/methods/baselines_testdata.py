"""A hand-made training set for the baseline recipe tests: every case a recipe must include or exclude.

ex1 (choice): two correct teacher CoTs, one wrong teacher CoT, and a dual pair with a corrupted CoT.
ex2 (number): a wrong teacher CoT and its rectification, paired (a "negative" dual pair).
ex3 (label): one correct teacher CoT, a wrong CoT with no extractable answer, and a mis-graded "wrong" CoT
             whose answer is the gold one (neither may become a counterfactual).
ex4 (number): no rationale at all (only answer-only training sees it).
"""

from __future__ import annotations

from cotdistill.lab.students import train_tokenizer
from cotdistill.records import DualPair, Example, Rationale

EX1 = Example(id="bbh/date/1", task="date", question="Which day?\nOptions:\n(A) Mon\n(B) Tue\n(C) Wed",
              answer="(B)", answer_format="choice", choices=["(A)", "(B)", "(C)"], task_description="Find the day.")
EX2 = Example(id="bbh/arith/2", task="arith", question="What is 5 - 25?", answer="-20", answer_format="number",
              task_description="Compute.")
EX3 = Example(id="bbh/bool/3", task="bool", question="not False is", answer="True", answer_format="label",
              choices=["True", "False"], task_description="Evaluate.")
EX4 = Example(id="bbh/arith/4", task="arith", question="What is 2 + 2?", answer="4", answer_format="number",
              task_description="Compute.")
EXAMPLES = [EX1, EX2, EX3, EX4]


def _r(id: str, ex: Example, text: str, answer: str | None, correct: bool | None, origin: str = "teacher",
       sample: int = 0) -> Rationale:
    return Rationale(id=id, example_id=ex.id, text=text, answer=answer, correct=correct, origin=origin,
                     sample_index=sample)


R1A = _r("r1a", EX1, "Today is Monday. Tomorrow is Tuesday. Therefore, the answer is (B).", "(B)", True)
R1B = _r("r1b", EX1, "  Monday plus one day is Tuesday. Therefore, the answer is (B).\n", "(B)", True, sample=1)
R1W = _r("r1w", EX1, "Today is Monday. Therefore, the answer is (A).", "(A)", False, sample=2)
R1C = _r("r1c", EX1, "Today is Monday. Tomorrow is Wednesday. Therefore, the answer is (C).", "(C)", False,
         origin="corrupted")
R2W = _r("r2w", EX2, "5 minus 25 is 20. Therefore, the answer is 20.", "20", False)
R2R = _r("r2r", EX2, "5 minus 25 is -20. Therefore, the answer is -20.", "-20", True, origin="rectified")
R3 = _r("r3", EX3, "not False is True. Therefore, the answer is True.", "True", True)
R3X = _r("r3x", EX3, "I am not sure what this means.", None, False, sample=1)
R3G = _r("r3g", EX3, "not False is True. Therefore, the answer is True.", "True", False, sample=2)  # mis-graded
RATIONALES = [R1A, R1B, R1W, R1C, R2W, R2R, R3, R3X, R3G]

PAIR1 = DualPair(id="p1", example_id=EX1.id, chosen=R1A, rejected=R1C, kind="positive")
PAIR2 = DualPair(id="p2", example_id=EX2.id, chosen=R2R, rejected=R2W, kind="negative")
PAIR3 = DualPair(id="p3", example_id=EX3.id, chosen=R3, rejected=R3G, kind="positive")
PAIRS = [PAIR1, PAIR2, PAIR3]


def all_texts() -> list[str]:
    from cotdistill.prompting import student_prompt

    texts = [student_prompt(e) for e in EXAMPLES] + [r.text for r in RATIONALES]
    return texts + ["[label] [rationale] [Factual] [Counterfactual] [Answer Prediction] [Explanation Generation]"]


def tokenizer(vocab: int = 400):
    """A small byte-level BPE fitted to this set: encodes any text, decodes it back exactly."""
    return train_tokenizer(all_texts(), vocab)
