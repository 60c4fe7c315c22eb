"""Each baseline recipe's sequences, decoded back to text, are exactly its definition (docs/baselines.md):
prompts and task tags, targets, which rationales are used or excluded, and the loss mix carried by the weights."""

from __future__ import annotations

import math

import pytest

import baselines_testdata as D
from cotdistill.methods import REGISTRY, MethodInputs, eval_prompt
from cotdistill.methods.encode import ANSWER, RATIONALE
from cotdistill.prompting import student_prompt

TOK = D.tokenizer()
P1, P2, P3, P4 = (student_prompt(e) for e in D.EXAMPLES)


def inputs(**kw) -> MethodInputs:
    base = dict(examples=D.EXAMPLES, rationales=D.RATIONALES, pairs=D.PAIRS, tokenizer=TOK)
    return MethodInputs(**{**base, **kw})


def build(name: str, params: dict | None = None, **kw):
    return REGISTRY[name].build(inputs(**kw), params or {})


def decoded(seqs) -> list[tuple[str, str, str]]:
    """(id, prompt text, target text) per sequence, after checking the target ends with exactly one EOS."""
    out = []
    for s in seqs:
        assert s.target_ids[-1] == TOK.eos_token_id and TOK.eos_token_id not in s.target_ids[:-1], s.id
        out.append((s.id, TOK.decode(s.prompt_ids), TOK.decode(s.target_ids[:-1])))
    return out


def task_weight(seqs, suffix: str) -> float:
    """The one token weight every token of the task (sequence ids ending in `suffix`) carries."""
    ws = {w for s in seqs if s.id.endswith(suffix) for w in s.target_weights}
    assert len(ws) == 1, (suffix, ws)
    return ws.pop()


def task_tokens(seqs, suffix: str) -> int:
    return sum(len(s.target_ids) for s in seqs if s.id.endswith(suffix))


def assert_mix(seqs, first: str, second: str, alpha: float) -> None:
    """Token weights realise alpha * mean(first) + (1 - alpha) * mean(second), at SFT scale (mean weight 1)."""
    w1, w2 = task_weight(seqs, first), task_weight(seqs, second)
    n1, n2 = task_tokens(seqs, first), task_tokens(seqs, second)
    assert w1 * n1 / (w2 * n2) == pytest.approx(alpha / (1 - alpha))
    assert (w1 * n1 + w2 * n2) / (n1 + n2) == pytest.approx(1.0)


def test_answer_only_is_prompt_to_answer_sentence_for_every_example():
    [stage] = build("answer_only")
    assert decoded(stage.sequences) == [
        ("answer_only/bbh/date/1", P1, " Therefore, the answer is (B)."),
        ("answer_only/bbh/arith/2", P2, " Therefore, the answer is -20."),
        ("answer_only/bbh/bool/3", P3, " Therefore, the answer is True."),
        ("answer_only/bbh/arith/4", P4, " Therefore, the answer is 4."),
    ]
    for s in stage.sequences:
        assert set(s.target_weights) == {1.0} and set(s.target_segments) == {ANSWER}
    assert REGISTRY["answer_only"].needs == ()
    assert eval_prompt("answer_only", D.EX1) == P1


def test_mt_cot_tags_targets_order_and_mix():
    [stage] = build("mt_cot")
    ans, exp = "\n[Answer Prediction]:", "\n[Explanation Generation]:"
    # Correct teacher CoTs only: r1a, r1b, r3; ex2 (wrong + rectified) and ex4 (none) give nothing.
    assert decoded(stage.sequences) == [
        ("mt_cot/bbh/date/1/answer", P1 + ans, " Therefore, the answer is (B)."),
        ("mt_cot/r1a/rationale", P1 + exp, " " + D.R1A.text),
        ("mt_cot/r1b/rationale", P1 + exp, " " + D.R1B.text.strip()),
        ("mt_cot/bbh/bool/3/answer", P3 + ans, " Therefore, the answer is True."),
        ("mt_cot/r3/rationale", P3 + exp, " " + D.R3.text),
    ]
    assert_mix(stage.sequences, "/answer", "/rationale", 0.1)  # default alpha: weight of the answer loss
    assert eval_prompt("mt_cot", D.EX1) == P1 + ans
    # the CoT's answer sentence is the answer segment, its reasoning the rationale segment
    s = stage.sequences[1]
    reasoning = [t for t, g in zip(s.target_ids, s.target_segments) if g == RATIONALE]
    assert TOK.decode(reasoning) == " Today is Monday. Tomorrow is Tuesday."


def test_mt_cot_alpha_and_rectified_origin_are_parameters():
    [stage] = build("mt_cot", {"alpha": 0.7, "origins": ["teacher", "rectified"]})
    ids = [s.id for s in stage.sequences]
    assert "mt_cot/r2r/rationale" in ids and "mt_cot/bbh/arith/2/answer" in ids
    assert_mix(stage.sequences, "/answer", "/rationale", 0.7)


def test_step_by_step_prefixes_rationale_without_answer_and_alpha_mix():
    [stage] = build("step_by_step")
    assert decoded(stage.sequences) == [
        ("step_by_step/bbh/date/1/answer", "[label] " + P1, " Therefore, the answer is (B)."),
        ("step_by_step/r1a/rationale", "[rationale] " + P1, " Today is Monday. Tomorrow is Tuesday."),
        ("step_by_step/r1b/rationale", "[rationale] " + P1, " Monday plus one day is Tuesday."),
        ("step_by_step/bbh/bool/3/answer", "[label] " + P3, " Therefore, the answer is True."),
        ("step_by_step/r3/rationale", "[rationale] " + P3, " not False is True."),
    ]
    assert_mix(stage.sequences, "/answer", "/rationale", 0.5)
    assert eval_prompt("step_by_step", D.EX3) == "[label] " + P3
    assert stage.extra["eval_prompt"] == {"prefix": "[label] ", "suffix": ""}


def test_step_by_step_paper_prefixes_and_alpha():
    params = {"label_prefix": "predict: ", "rationale_prefix": "explain: ", "alpha": 0.25}
    [stage] = build("step_by_step", params)
    assert decoded(stage.sequences)[0][1] == "predict: " + P1
    assert decoded(stage.sequences)[1][1] == "explain: " + P1
    assert_mix(stage.sequences, "/answer", "/rationale", 0.25)
    assert eval_prompt("step_by_step", D.EX1, params=params) == "predict: " + P1


def test_scott_factual_and_counterfactual_sequences():
    [stage] = build("scott")
    cf = "[Counterfactual] "
    assert decoded(stage.sequences) == [
        ("scott/r1a/factual", "[Factual] " + P1, " " + D.R1A.text),
        ("scott/r1b/factual", "[Factual] " + P1, " " + D.R1B.text.strip()),
        ("scott/r3/factual", "[Factual] " + P3, " " + D.R3.text),
        # pairs' rejected CoTs first (the corruption, the original wrong CoT), then the other wrong teacher CoT;
        # r2w is in a pair and among the wrong rationales but is used once; r3x (no answer) and r3g (its answer
        # is the gold one) are excluded.
        ("scott/r1c/counterfactual",
         cf + P1 + " Today is Monday. Tomorrow is Wednesday. Therefore, the answer is", " (C)."),
        ("scott/r2w/counterfactual", cf + P2 + " 5 minus 25 is 20. Therefore, the answer is", " 20."),
        ("scott/r1w/counterfactual", cf + P1 + " Today is Monday. Therefore, the answer is", " (A)."),
    ]
    for s in stage.sequences:
        if s.id.endswith("counterfactual"):
            assert set(s.target_segments) == {ANSWER}
    assert_mix(stage.sequences, "/counterfactual", "/factual", 0.5)
    assert eval_prompt("scott", D.EX1) == "[Factual] " + P1


def test_scott_sources_and_alpha():
    [stage] = build("scott", {"counterfactual_from": ["pairs"], "alpha": 0.2})
    assert [s.id for s in stage.sequences if s.id.endswith("counterfactual")] == [
        "scott/r1c/counterfactual", "scott/r2w/counterfactual"]
    assert_mix(stage.sequences, "/counterfactual", "/factual", 0.2)
    # without any wrong rationale the factual task carries the whole loss at weight 1
    [alone] = build("scott", {"counterfactual_from": []})
    assert {w for s in alone.sequences for w in s.target_weights} == {1.0}


def test_dpo_rows_and_sft_stage():
    sft, dpo = build("dpo")
    # EDIT's stage 1: the correct teacher CoTs (D+), then the rectified ones (D-+); never a wrong or corrupted CoT
    assert [s.id for s in sft.sequences] == ["r1a", "r1b", "r3", "r2r"]
    assert decoded(sft.sequences)[3] == ("r2r", P2, " " + D.R2R.text)
    assert decoded(sft.sequences)[1] == ("r1b", P1, " " + D.R1B.text.strip())
    assert dpo.sequences == [] and dpo.extra["trainer"] == "dpo" and dpo.extra["beta"] == 0.1
    assert dpo.extra["rows"] == [
        {"id": "p1", "prompt": P1, "chosen": " " + D.R1A.text, "rejected": " " + D.R1C.text},
        {"id": "p2", "prompt": P2, "chosen": " " + D.R2R.text, "rejected": " " + D.R2W.text},
        {"id": "p3", "prompt": P3, "chosen": " " + D.R3.text, "rejected": " " + D.R3G.text},
    ]
    [only] = build("dpo", {"sft_first": False, "beta": 0.3})
    assert only.name == "dpo" and only.extra["beta"] == 0.3


@pytest.mark.parametrize("name,params,message", [
    ("mt_cot", {"alpah": 0.1}, "unknown parameter"),
    ("step_by_step", {"alpha": 1.5}, "must lie in [0, 1]"),
    ("scott", {"alpha": "half"}, "must be a number"),
    ("scott", {"counterfactual_from": ["teacher"]}, "unknown counterfactual_from"),
    ("step_by_step", {"prompt_style": "chat"}, "supports prompt_style 'plain' only"),
])
def test_bad_parameters_are_named(name, params, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build(name, params)


def test_dpo_parameters_are_checked():
    from cotdistill.errors import CotdistillError

    with pytest.raises(CotdistillError, match="'beta': Input should be greater than 0"):
        build("dpo", {"beta": 0})
    with pytest.raises(CotdistillError, match="'dpo.learning_rat'"):
        build("dpo", {"dpo": {"learning_rat": 1e-5}})


def test_ungraded_rationales_are_refused():
    ungraded = D.R1A.model_copy(update={"id": "raw", "correct": None})
    for name in ("mt_cot", "step_by_step", "scott"):
        with pytest.raises(ValueError, match="'raw' is not graded"):
            build(name, rationales=[ungraded])


def test_mean_token_weight_is_one_for_every_recipe():
    """All recipes train at plain SFT's scale, so learning rates carry over between methods."""
    for name in ("answer_only", "mt_cot", "step_by_step", "scott"):
        [stage] = build(name)
        weights = [w for s in stage.sequences for w in s.target_weights]
        assert math.isclose(sum(weights) / len(weights), 1.0), name


@pytest.mark.slow
def test_recipes_with_smollm2_tokenizer_decode_to_their_definition(smollm2_dir):
    """With a real pretrained tokenizer, too, prompts decode exactly and targets are " " + text + EOS; and TRL's
    joint tokenization of prompt + chosen keeps our prompt's tokens as its prefix (same context as evaluation)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    for name in ("answer_only", "mt_cot", "step_by_step", "scott", "dpo"):
        for stage in build(name, tokenizer=tok):
            for s in stage.sequences:
                assert s.target_ids[-1] == tok.eos_token_id, s.id
                assert tok.decode(s.target_ids[:-1]).startswith(" "), s.id
            for row in stage.extra.get("rows", []):
                prompt_ids = tok(row["prompt"]).input_ids
                assert prompt_ids == tok(row["prompt"], add_special_tokens=False).input_ids
                for side in ("chosen", "rejected"):
                    assert tok(row["prompt"] + row[side]).input_ids[: len(prompt_ids)] == prompt_ids
    [stage] = build("scott", tokenizer=tok)
    s = stage.sequences[-1]
    assert tok.decode(s.prompt_ids) == "[Counterfactual] " + P1 + " Today is Monday. Therefore, the answer is"
    assert tok.decode(s.target_ids[:-1]) == " (A)."
