"""EDIT recipe: what each stage trains on and with which token weights."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter

import pytest

from cotdistill.align import key_token_mask
from cotdistill.errors import CotdistillError
from cotdistill.methods import REGISTRY
from cotdistill.methods.encode import encode, tokens_in_spans
from cotdistill.prompting import student_prompt
from recipe_fixtures import lab_inputs, tokenizer  # noqa: F401  (fixtures)


def _build(inputs, **params):
    return {s.name: s for s in REGISTRY["edit"].build(inputs, params)}


def test_stage1_trains_on_correct_and_rectified_cots_only(lab_inputs):
    stages = _build(lab_inputs)
    ids = [s.id for s in stages["sft"].sequences]
    every = {r.id: r for r in lab_inputs.rationales}
    every |= {r.id: r for p in lab_inputs.pairs for r in (p.chosen, p.rejected)}
    assert len(ids) == len(set(ids))
    assert all(every[i].correct is True for i in ids)  # no wrong CoT reaches SFT
    assert not any(every[i].origin == "corrupted" for i in ids)
    expected = {r.id for r in lab_inputs.rationales if r.correct and r.origin == "teacher"}
    rectified = {p.chosen.id for p in lab_inputs.pairs if p.kind == "negative"}
    assert rectified and set(ids) == expected | rectified
    # the "w/o RWC" ablation drops exactly the rectified CoTs
    without = _build(lab_inputs, rectified=False)["sft"]
    assert {s.id for s in without.sequences} == expected
    assert all(w == 1.0 for s in stages["sft"].sequences for w in s.target_weights)


def test_stage1_prompts_are_the_evaluation_prompts(lab_inputs):
    stage = _build(lab_inputs, stages=["sft"])["sft"]
    examples = {e.id: e for e in lab_inputs.examples}
    for seq in stage.sequences[:10]:
        prompt = student_prompt(examples[seq.example_id])
        assert seq.prompt_ids == lab_inputs.tokenizer(prompt, add_special_tokens=False).input_ids
        assert seq.target_ids[-1] == lab_inputs.tokenizer.eos_token_id


def test_stage2_weights_alpha_and_minus_beta_exactly_on_key_tokens(lab_inputs):
    stage = _build(lab_inputs, alpha=0.7, beta=0.1)["krsl"]
    seqs = {s.id: s for s in stage.sequences}
    examples = {e.id: e for e in lab_inputs.examples}
    tok = lab_inputs.tokenizer
    checked = 0
    for pair in lab_inputs.pairs:
        prompt = student_prompt(examples[pair.example_id])
        good, bad = encode(tok, prompt, pair.chosen.text), encode(tok, prompt, pair.rejected.text)
        key_good, key_bad = key_token_mask(good.target_ids, bad.target_ids)
        assert any(key_good) and any(key_bad)  # lab pairs always differ in their answers
        chosen, rejected = seqs[f"{pair.id}/chosen"], seqs[f"{pair.id}/rejected"]
        assert chosen.target_ids == good.target_ids and rejected.target_ids == bad.target_ids
        assert chosen.target_weights == [0.7 if k else 0.0 for k in key_good]
        assert rejected.target_weights == [-0.1 if k else 0.0 for k in key_bad]
        checked += 1
    assert checked == len(lab_inputs.pairs) and len(stage.sequences) == 2 * checked
    # pair order: chosen then rejected, so a trainer can batch a pair together
    assert [s.id.rsplit("/", 1)[1] for s in stage.sequences[:4]] == ["chosen", "rejected"] * 2


def test_stage2_settings_and_threshold_come_from_the_params(lab_inputs):
    stages = _build(lab_inputs, nll_threshold=3.5, stage1={"learning_rate": 1e-3, "epochs": 2},
                    stage2={"learning_rate": 1e-5, "epochs": 4, "lr_decay_per_epoch": 0.9, "batch_size": 8})
    sft, krsl = stages["sft"], stages["krsl"]
    assert (sft.learning_rate, sft.epochs, sft.merge_lora_before) == (1e-3, 2, False)
    assert (krsl.learning_rate, krsl.epochs, krsl.negative_nll_cap) == (1e-5, 4, 3.5)
    assert krsl.merge_lora_before  # KRSL starts from the merged stage-1 model with a new LoRA
    assert krsl.extra["lr_decay_per_epoch"] == 0.9 and krsl.extra["batch_size"] == 8
    assert krsl.extra["stats"]["pairs"] == len(lab_inputs.pairs)
    share = krsl.extra["stats"]["key_tokens"] / krsl.extra["stats"]["target_tokens"]
    assert 0 < share < 0.5
    defaults = _build(lab_inputs)
    assert (defaults["sft"].learning_rate, defaults["sft"].epochs) == (2e-4, 15)
    krsl = defaults["krsl"]
    assert (krsl.learning_rate, krsl.epochs, krsl.negative_nll_cap) == (5e-6, 10, 20.0)
    only_krsl = _build(lab_inputs, stages=["krsl"])
    assert list(only_krsl) == ["krsl"] and not only_krsl["krsl"].merge_lora_before


def test_pair_kinds_and_error_types_select_stage2_pairs(lab_inputs):
    kinds = {p.id: p.kind for p in lab_inputs.pairs}
    errors = {p.id: p.rejected.error_type for p in lab_inputs.pairs}
    pair_of = lambda s: s.id.rsplit("/", 1)[0]  # noqa: E731
    negative = _build(lab_inputs, pair_kinds=["negative"])["krsl"]
    assert {kinds[pair_of(s)] for s in negative.sequences} == {"negative"}
    present = sorted({e for e in errors.values()})
    assert len(present) >= 2
    only = present[0]
    typed = _build(lab_inputs, error_types=[only])["krsl"]
    assert {errors[pair_of(s)] for s in typed.sequences} == {only}
    assert typed.extra["stats"]["pairs"] == sum(e == only for e in errors.values())


def test_pairs_that_are_not_dual_are_dropped(lab_inputs):
    pair = lab_inputs.pairs[0]
    both_right = pair.model_copy(update={"id": "bad~pair", "rejected": pair.chosen.model_copy(update={"id": "x"})})
    inputs = dataclasses.replace(lab_inputs, pairs=[pair, both_right])
    krsl = _build(inputs, stages=["krsl"])["krsl"]
    assert krsl.extra["stats"]["invalid_pairs_dropped"] == 1
    assert {s.id.rsplit("/", 1)[0] for s in krsl.sequences} == {pair.id}


def test_bad_params_name_the_field(lab_inputs):
    with pytest.raises(CotdistillError, match="'alpah'"):
        _build(lab_inputs, alpah=1.0)
    with pytest.raises(CotdistillError, match="stage2.learning_rate"):
        _build(lab_inputs, stage2={"learning_rate": -1})
    with pytest.raises(CotdistillError, match="no dual pair"):
        _build(lab_inputs, error_types=["unknown"])


def test_the_llama2_config_validates_and_carries_the_papers_settings():
    from pathlib import Path

    from cotdistill.config import load_config
    from cotdistill.methods.dpo import DpoParams
    from cotdistill.methods.edit import EditParams
    from cotdistill.methods.params import parse_params
    from cotdistill.methods.std_cot import StdCotParams

    cfg = load_config(Path(__file__).parents[2] / "configs" / "edit_llama2_7b.yaml")
    assert [m.name for m in cfg.study.methods] == ["edit", "std_cot", "dpo"]
    lora = cfg.student.lora
    assert (lora.r, lora.alpha, lora.target_modules) == (64, 32, ["q_proj", "v_proj"])
    edit = parse_params(EditParams, "edit", cfg.study.methods[0].params)
    assert (edit.alpha, edit.beta, edit.nll_threshold) == (1.0, 0.025, 20.0)
    assert (edit.stage1.learning_rate, edit.stage2.learning_rate) == (2e-4, 5e-6)
    assert (edit.stage1.epochs, edit.stage2.epochs) == (15, 10)
    parse_params(StdCotParams, "std_cot", cfg.study.methods[1].params)
    assert set(cfg.study.methods[0].params) <= set(EditParams.model_fields)
    dpo = parse_params(DpoParams, "dpo", cfg.study.methods[2].params)  # EDIT's A.8 DPO setting, tagged [paper A.8]
    assert (dpo.beta, dpo.dpo.learning_rate, dpo.dpo.scheduler, dpo.dpo.warmup_ratio) == (0.1, 1e-5, "cosine", 0.3)
    assert (dpo.dpo.epochs, dpo.dpo.batch_size, dpo.rectified) == (10, 16, True)


def test_zero_alpha_or_beta_removes_that_side_from_stage2(lab_inputs):
    """Figure 6's ablations: without the correct (alpha=0) or the wrong (beta=0) key tokens."""
    no_correct = _build(lab_inputs, stages=["krsl"], alpha=0.0)["krsl"]
    assert {s.id.rsplit("/", 1)[1] for s in no_correct.sequences} == {"rejected"}
    no_wrong = _build(lab_inputs, stages=["krsl"], beta=0.0)["krsl"]
    assert {s.id.rsplit("/", 1)[1] for s in no_wrong.sequences} == {"chosen"}
    assert no_wrong.extra["stats"]["zero_weight_dropped"] == len(lab_inputs.pairs)


def test_stage2_sequences_name_their_pair_so_the_trainer_batches_it_whole(lab_inputs):
    stage = _build(lab_inputs, stages=["krsl"])["krsl"]
    assert all(s.group == s.id.rsplit("/", 1)[0] for s in stage.sequences)
    assert set(Counter(s.group for s in stage.sequences).values()) == {2}


def _pair_targets(inputs, pair):
    prompt = student_prompt({e.id: e for e in inputs.examples}[pair.example_id])
    good, bad = encode(inputs.tokenizer, prompt, pair.chosen.text), encode(inputs.tokenizer, prompt, pair.rejected.text)
    return good, bad, key_token_mask(good.target_ids, bad.target_ids)


def test_gamma_weights_the_correct_cots_non_key_tokens_only(lab_inputs):
    """Our variant gamma: chosen key tokens keep alpha, every other chosen target token gets gamma, and the wrong
    CoT's non-key tokens stay at 0 (gamma never reaches the rejected side)."""
    stage = _build(lab_inputs, stages=["krsl"], alpha=1.0, beta=0.05, gamma=0.1)["krsl"]
    seqs = {s.id: s for s in stage.sequences}
    for pair in lab_inputs.pairs:
        _good, _bad, (key_good, key_bad) = _pair_targets(lab_inputs, pair)
        assert seqs[f"{pair.id}/chosen"].target_weights == [1.0 if k else 0.1 for k in key_good]
        assert seqs[f"{pair.id}/rejected"].target_weights == [-0.05 if k else 0.0 for k in key_bad]
    assert stage.extra["stats"]["gamma"] == 0.1
    # gamma alone keeps a chosen side that alpha = 0 would have dropped
    no_alpha = _build(lab_inputs, stages=["krsl"], alpha=0.0, beta=0.0, gamma=0.1)["krsl"]
    assert {s.id.rsplit("/", 1)[1] for s in no_alpha.sequences} == {"chosen"}


def test_first_wrong_step_scope_keeps_minus_beta_only_inside_that_step(lab_inputs):
    """Our variant negative_scope=first_wrong_step: -beta only on wrong key tokens inside the rejected CoT's
    first_wrong_step span; key tokens of the later, locally valid steps get 0, where EDIT's scope gives -beta."""
    scoped = {s.id: s for s in _build(lab_inputs, stages=["krsl"], beta=0.1,
                                      negative_scope="first_wrong_step")["krsl"].sequences}
    every = {s.id: s for s in _build(lab_inputs, stages=["krsl"], beta=0.1)["krsl"].sequences}
    later_tokens_zeroed = 0
    for pair in lab_inputs.pairs:
        good, bad, (key_good, key_bad) = _pair_targets(lab_inputs, pair)
        inside = tokens_in_spans(bad.target_offsets, [pair.rejected.first_wrong_step])
        expected = [-0.1 if k and i else 0.0 for k, i in zip(key_bad, inside)]
        rejected = scoped.get(f"{pair.id}/rejected")
        assert (rejected.target_weights if rejected else [0.0] * len(key_bad)) == expected
        assert scoped[f"{pair.id}/chosen"].target_weights == every[f"{pair.id}/chosen"].target_weights
        after = [t for t, (a, _b) in enumerate(bad.target_offsets)
                 if a >= pair.rejected.first_wrong_step[1] and key_bad[t]]
        if after:
            assert all(every[f"{pair.id}/rejected"].target_weights[t] == -0.1 for t in after)
            assert all(expected[t] == 0.0 for t in after)
            later_tokens_zeroed += len(after)
    assert later_tokens_zeroed > 0  # the lab pairs hold wrong CoTs whose later steps differ too


def test_first_wrong_step_scope_without_the_span_names_the_pair(lab_inputs):
    pair = lab_inputs.pairs[0]
    unknown = pair.model_copy(update={"rejected": pair.rejected.model_copy(update={"first_wrong_step": None})})
    inputs = dataclasses.replace(lab_inputs, pairs=[unknown, *lab_inputs.pairs[1:]])
    with pytest.raises(CotdistillError, match=re.escape(f"pair {pair.id!r} has no first_wrong_step")):
        _build(inputs, stages=["krsl"], negative_scope="first_wrong_step")
    assert _build(inputs, stages=["krsl"])["krsl"].sequences  # EDIT's scope needs no span


def test_stage2_learning_rate_ratio_and_lora_choice(lab_inputs):
    """stage2.learning_rate_ratio scales stage 1's rate; stage2.lora reaches the trainer as the stage's choice."""
    stages = _build(lab_inputs, stage1={"learning_rate": 3e-3}, stage2={"learning_rate_ratio": 0.1, "lora": False})
    assert stages["krsl"].learning_rate == pytest.approx(3e-4)
    assert stages["krsl"].extra["lora"] is False and "learning_rate_ratio" not in stages["krsl"].extra
    lora = _build(lab_inputs, stage2={"lora": {"r": 4, "target_modules": ["q_proj"]}})["krsl"].extra["lora"]
    assert lora == {"r": 4, "target_modules": ["q_proj"]}
    assert "lora" not in _build(lab_inputs)["krsl"].extra  # default: the run's training settings decide


def test_krsl_variant_params_are_validated(lab_inputs):
    with pytest.raises(CotdistillError, match="'gamma'"):
        _build(lab_inputs, gamma=-0.1)
    with pytest.raises(CotdistillError, match="'negative_scope'"):
        _build(lab_inputs, negative_scope="first_step")
    with pytest.raises(CotdistillError, match="'stage2'.*not both"):
        _build(lab_inputs, stage2={"learning_rate": 1e-5, "learning_rate_ratio": 0.1})
    with pytest.raises(CotdistillError, match="stage2.learning_rate_ratio"):
        _build(lab_inputs, stage2={"learning_rate_ratio": -1})
    with pytest.raises(CotdistillError, match="relative to stage1.learning_rate"):
        _build(lab_inputs, stage1={"epochs": 1}, stage2={"learning_rate_ratio": 0.1})
    with pytest.raises(CotdistillError, match="stage2.lora"):
        _build(lab_inputs, stage2={"lora": {"rank": 4}})


def test_the_krsl_search_config_covers_each_factor_and_chooses_epochs_on_validation():
    """configs/lab_krsl_search.yaml: every KRSL row picks its stage-2 epoch (at most 2) on validation, the study
    records validation results for choosing rows, and the grid spans each factor issue 12 names."""
    from pathlib import Path

    from cotdistill.config import load_config
    from cotdistill.methods.edit import EditParams, stage2_learning_rate
    from cotdistill.methods.params import parse_params

    study = load_config(Path(__file__).parents[2] / "configs" / "lab_krsl_search.yaml").study
    assert study.report_validation and study.validation is not None
    rows = {m.row: parse_params(EditParams, m.row, m.params) for m in study.methods}
    krsl = {row: p for row, p in rows.items() if "krsl" in p.stages}
    assert all(p.stage2.select_epoch and p.stage2.epochs <= 2 for p in krsl.values())
    assert len({p.stage1.model_dump_json() for p in rows.values()}) == 1  # one stage 1 for every row
    assert {round(stage2_learning_rate(p) / p.stage1.learning_rate, 4) for p in krsl.values()} == {0.01, 0.025, 0.1}
    assert {p.nll_threshold for p in krsl.values()} == {5, 20}
    assert {p.stage2.lora is False for p in krsl.values()} == {True, False}
    assert {p.gamma for p in krsl.values()} == {0.0, 0.1}
    assert {p.negative_scope for p in krsl.values()} == {"all", "first_wrong_step"}
