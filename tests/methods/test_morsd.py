"""MoRSD's recipe: Std-CoT sequences from the kept rationales, narrowed by a saved selection when given."""

from __future__ import annotations

import pytest

from cotdistill.errors import CotdistillError
from cotdistill.lab import generate_examples
from cotdistill.lab.students import train_tokenizer
from cotdistill.lab.teacher import ScriptedTeacher
from cotdistill.methods import REGISTRY, MethodInputs
from cotdistill.methods.encode import ANSWER
from cotdistill.prompting import plain_prompt


def test_morsd_trains_std_cot_on_the_selection() -> None:
    examples = generate_examples("web_of_lies", 3, seed=2, difficulty={"people": 3})
    rationales = [r for per in ScriptedTeacher().solve(examples, n=2) for r in per]
    tokenizer = train_tokenizer([e.question for e in examples] + [r.text for r in rationales], 400)
    inputs = MethodInputs(examples=examples, rationales=rationales, tokenizer=tokenizer)
    (stage,) = REGISTRY["morsd"].build(inputs, {})
    assert len(stage.sequences) == len(rationales) and stage.instance_weighting is None
    seq = stage.sequences[0]
    assert tokenizer.decode(seq.prompt_ids) == plain_prompt(examples[0])
    assert tokenizer.decode(seq.target_ids, skip_special_tokens=True).strip() == rationales[0].text
    answer = [t for t, s in zip(seq.target_ids, seq.target_segments) if s == ANSWER]
    assert tokenizer.decode(answer, skip_special_tokens=True).strip() == "Therefore, the answer is " + \
        examples[0].answer + "."
    (stage,) = REGISTRY["morsd"].build(inputs, {"selected_ids": [rationales[3].id]})
    assert [s.id for s in stage.sequences] == [f"morsd/{rationales[3].id}"]
    with pytest.raises(CotdistillError, match="not in the inputs"):
        REGISTRY["morsd"].build(inputs, {"selected_ids": ["missing"]})
    with pytest.raises(CotdistillError, match="top_kk"):
        REGISTRY["morsd"].build(inputs, {"top_kk": 1})
