"""Std-CoT recipe and EDIT's data-volume controls."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from cotdistill.errors import CotdistillError
from cotdistill.methods import REGISTRY
from cotdistill.prompting import student_prompt
from recipe_fixtures import lab_inputs, tokenizer  # noqa: F401  (fixtures)


def _stage(inputs, **params):
    stages = REGISTRY["std_cot"].build(inputs, params)
    assert len(stages) == 1
    return stages[0]


def test_trains_on_correct_teacher_cots_only(lab_inputs):
    stage = _stage(lab_inputs)
    by_id = {r.id: r for r in lab_inputs.rationales}
    ids = [s.id for s in stage.sequences]
    assert set(ids) == {r.id for r in lab_inputs.rationales if r.correct and r.origin == "teacher"}
    assert any(not r.correct for r in lab_inputs.rationales)  # the fixture has wrong ones to exclude
    assert any(r.correct and r.origin == "rectified" for r in lab_inputs.rationales)  # and rectified ones
    assert all(by_id[i].correct for i in ids)
    assert all(w == 1.0 for s in stage.sequences for w in s.target_weights)


def test_repeat_sampling_matches_the_dual_volume(lab_inputs):
    n_pairs = len(lab_inputs.pairs)
    stage = _stage(lab_inputs, volume="repeat")
    assert len(stage.sequences) == 2 * n_pairs  # EDIT's stage-2 sequence count
    correct = [r for r in lab_inputs.rationales if r.correct and r.origin == "teacher"]
    uses = Counter(s.id.rsplit("@", 1)[0] for s in stage.sequences)
    assert set(uses) <= {r.id for r in correct}
    assert set(uses) == {r.id for r in correct}  # every distinct correct CoT before any repeat
    assert max(uses.values()) - min(uses.values()) <= 1  # repeats spread evenly
    assert len({s.id for s in stage.sequences}) == len(stage.sequences)
    assert len(_stage(lab_inputs, volume="repeat", target_size=7).sequences) == 7


def test_dual_cots_mark_the_wrong_ones_as_counterfactual(lab_inputs):
    stage = _stage(lab_inputs, volume="dual")
    tok = lab_inputs.tokenizer
    examples = {e.id: e for e in lab_inputs.examples}
    assert len(stage.sequences) == 2 * len(lab_inputs.pairs)
    for pair, good, bad in zip(lab_inputs.pairs, stage.sequences[::2], stage.sequences[1::2]):
        plain = student_prompt(examples[pair.example_id])
        assert good.id == pair.chosen.id and bad.id == pair.rejected.id
        assert good.prompt_ids == tok(plain, add_special_tokens=False).input_ids
        assert bad.prompt_ids == tok(f"[Counterfactual Reasoning] {plain}", add_special_tokens=False).input_ids
    in_target = _stage(lab_inputs, volume="dual", counterfactual_in="target", counterfactual_marker="[CF]")
    pair, good, bad = lab_inputs.pairs[0], in_target.sequences[0], in_target.sequences[1]
    assert good.prompt_ids == bad.prompt_ids  # the marker moved from the prompt to the wrong CoT
    assert tok.decode(bad.target_ids, skip_special_tokens=True).strip() == f"[CF] {pair.rejected.text}"


def test_volume_controls_need_pairs(lab_inputs):
    with pytest.raises(CotdistillError, match="needs dual pairs"):
        _stage(dataclasses.replace(lab_inputs, pairs=()), volume="dual")
    with pytest.raises(CotdistillError, match="volume"):
        _stage(lab_inputs, volume="triple")
