"""Shared inputs for the recipe tests: SmolLM2's tokenizer and a small lab dataset with dual pairs.

The test modules import these fixtures; a conftest.py here would shadow the `conftest` module whose helpers
tests/test_cli.py imports.
"""

from __future__ import annotations

import pytest

from cotdistill.lab import ScriptedTeacher, generate_examples
from cotdistill.lab.cli import _dual_pairs as dual_pairs  # what `cotdistill lab --pairs` writes
from cotdistill.methods import MethodInputs


@pytest.fixture(scope="session")
def tokenizer():
    from cotdistill.models import load_tokenizer

    return load_tokenizer("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def lab_inputs(tokenizer) -> MethodInputs:
    """Two families, two teacher samples per question with mistakes; every wrong CoT rectified (negative pairs)
    and every clean correct one corrupted (positive pairs), as `cotdistill lab --pairs` builds them: the
    rectified and corrupted CoTs are rationales too."""
    teacher = ScriptedTeacher(mistake_rate=0.4, spurious_rate=0.1, seed=5)
    examples = generate_examples("navigate", 12, seed=3) + generate_examples("web_of_lies", 12, seed=3)
    rationales = [r for rs in teacher.solve(examples, n=2) for r in rs]
    pairs = dual_pairs(teacher, examples, rationales)
    assert {p.kind for p in pairs} == {"positive", "negative"}
    assert any(r.error_type == "spurious" for r in rationales)
    made = [r for p in pairs for r in (p.chosen, p.rejected) if r.origin != "teacher"]
    return MethodInputs(examples=examples, rationales=rationales + made, pairs=pairs, tokenizer=tokenizer)
