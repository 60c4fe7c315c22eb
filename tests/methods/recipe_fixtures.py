"""Shared inputs for the recipe tests: SmolLM2's tokenizer and a small lab dataset with dual pairs.

The test modules import these fixtures; a conftest.py here would shadow the `conftest` module whose helpers
tests/test_cli.py imports.
"""

from __future__ import annotations

import pytest

from cotdistill.lab import ScriptedTeacher, generate_examples
from cotdistill.methods import MethodInputs
from cotdistill.records import DualPair


@pytest.fixture(scope="session")
def tokenizer():
    from cotdistill.models import load_tokenizer

    return load_tokenizer("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def lab_inputs(tokenizer) -> MethodInputs:
    """Two families, two teacher samples per question with mistakes; every wrong CoT rectified (negative pairs)
    and every clean correct one corrupted (positive pairs), as `cotdistill lab --pairs` builds them."""
    teacher = ScriptedTeacher(mistake_rate=0.4, spurious_rate=0.1, seed=5)
    examples = generate_examples("navigate", 12, seed=3) + generate_examples("web_of_lies", 12, seed=3)
    by_id = {e.id: e for e in examples}
    rationales = [r for rs in teacher.solve(examples, n=2) for r in rs]
    wrong = [(by_id[r.example_id], r) for r in rationales if not r.correct]
    right = [(by_id[r.example_id], r) for r in rationales if r.correct and r.error_type is None]
    pairs = [DualPair(id=f"{f.id}~pair", example_id=w.example_id, chosen=f, rejected=w, kind="negative")
             for (_, w), f in zip(wrong, teacher.rectify(wrong))]
    pairs += [DualPair(id=f"{b.id}~pair", example_id=r.example_id, chosen=r, rejected=b, kind="positive")
              for (_, r), b in zip(right, teacher.corrupt(right))]
    assert wrong and right and any(r.error_type == "spurious" for r in rationales)
    return MethodInputs(examples=examples, rationales=rationales, pairs=pairs, tokenizer=tokenizer)
