"""Encoder-decoder students (T5) go through the same recipes: the prompt is the encoder input with the
tokenizer's own special tokens (T5 appends EOS), the target is the decoder text with no separating space and one
final EOS, and a tiny T5 built from a config computes a finite loss on every recipe's sequences."""

from __future__ import annotations

import pytest
import torch
from tokenizers.processors import TemplateProcessing

import baselines_testdata as D
from cotdistill.methods import REGISTRY, MethodInputs
from cotdistill.methods.encode import encode
from cotdistill.prompting import student_prompt

RECIPES = ["answer_only", "mt_cot", "step_by_step", "scott", "dpo"]


def t5_like_tokenizer():
    """The test BPE with T5's input convention: every encoded text ends with </s>."""
    tok = D.tokenizer()
    eos = tok.eos_token_id
    tok.backend_tokenizer.post_processor = TemplateProcessing(single="$A </s>", special_tokens=[("</s>", eos)])
    return tok


TOK = t5_like_tokenizer()


def tiny_t5():
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(vocab_size=len(TOK), d_model=32, d_ff=64, d_kv=16, num_layers=1, num_decoder_layers=1,
                      num_heads=2, pad_token_id=TOK.pad_token_id, eos_token_id=TOK.eos_token_id,
                      decoder_start_token_id=TOK.pad_token_id)
    return T5ForConditionalGeneration(config)


def sequences(name: str):
    stages = REGISTRY[name].build(MethodInputs(examples=D.EXAMPLES, rationales=D.RATIONALES, pairs=D.PAIRS,
                                               tokenizer=TOK, encoder_decoder=True), {})
    return [s for stage in stages for s in stage.sequences]


def test_encode_for_encoder_decoder_has_encoder_eos_and_no_target_space():
    prompt = student_prompt(D.EX1)
    enc = encode(TOK, prompt, "Therefore, the answer is (B).", encoder_decoder=True)
    assert enc.prompt_ids[-1] == TOK.eos_token_id and TOK.decode(enc.prompt_ids[:-1]) == prompt
    assert TOK.decode(enc.target_ids[:-1]) == "Therefore, the answer is (B)." and enc.target_ids[-1] == TOK.eos_token_id
    assert enc.target_offsets[0][0] == 0
    # the causal path is unchanged: no special tokens in the prompt, a space before the target
    causal = encode(TOK, prompt, "Therefore, the answer is (B).")
    assert TOK.decode(causal.prompt_ids) == prompt and TOK.decode(causal.target_ids[:-1]).startswith(" Therefore")


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_gives_well_formed_t5_sequences(name):
    seqs = sequences(name)
    assert seqs
    for s in seqs:
        assert s.prompt_ids[-1] == TOK.eos_token_id and TOK.eos_token_id not in s.prompt_ids[:-1], s.id
        assert s.target_ids[-1] == TOK.eos_token_id and TOK.eos_token_id not in s.target_ids[:-1], s.id
        text = TOK.decode(s.target_ids[:-1])
        assert text and not text[0].isspace(), (s.id, text)
    by_id = {s.id: TOK.decode(s.target_ids[:-1]) for s in seqs}
    expected = {  # one sequence per recipe checked against its definition, without the causal space
        "answer_only": ("answer_only/bbh/arith/2", "Therefore, the answer is -20."),
        "mt_cot": ("mt_cot/r1a/rationale", D.R1A.text),
        "step_by_step": ("step_by_step/r3/rationale", "not False is True."),
        "scott": ("scott/r1c/counterfactual", "(C)."),
        "dpo": ("r3", D.R3.text),
    }[name]
    assert by_id[expected[0]] == expected[1]


def test_tiny_t5_computes_a_finite_weighted_loss_on_every_recipe():
    model = tiny_t5()
    for name in RECIPES:
        for s in sequences(name):
            out = model(input_ids=torch.tensor([s.prompt_ids]), labels=torch.tensor([s.target_ids]))
            per_token = torch.nn.functional.cross_entropy(out.logits[0], torch.tensor(s.target_ids), reduction="none")
            loss = (per_token * torch.tensor(s.target_weights)).sum() / len(s.target_ids)
            assert torch.isfinite(loss) and loss > 0, s.id


def test_dpo_rows_for_encoder_decoder_have_no_leading_space_and_train_dpo_refuses_t5(tmp_path):
    from cotdistill.methods.dpo import train_dpo

    [stage] = REGISTRY["dpo"].build(MethodInputs(examples=D.EXAMPLES, pairs=D.PAIRS, tokenizer=TOK,
                                                 encoder_decoder=True), {"sft_first": False})
    assert stage.extra["rows"][0]["chosen"] == D.R1A.text
    with pytest.raises(ValueError, match="causal LMs only"):
        train_dpo(tiny_t5(), TOK, stage.extra["rows"], {}, tmp_path)


def test_a_t5_student_generates_what_it_was_trained_on(tmp_path):
    """Evaluation's generation reads T5 outputs from the decoder: a T5 fitted to one answer sentence says it."""
    from cotdistill.generation import generate_texts
    from cotdistill.methods.base import TrainingStage
    from cotdistill.train.trainer import TrainSettings, train_stages

    model = tiny_t5()
    example = D.EXAMPLES[0]
    stage = TrainingStage(name="answer_only", sequences=sequences("answer_only")[:1], learning_rate=0.02, epochs=60)
    target = TOK.decode(stage.sequences[0].target_ids, skip_special_tokens=True)
    folder = train_stages(model, TOK, [stage], TrainSettings(batch_size=1, save_steps=100000, logging_steps=1000),
                          tmp_path / "t5")
    from transformers import T5ForConditionalGeneration

    trained = T5ForConditionalGeneration.from_pretrained(folder).eval()
    [[generated]] = generate_texts(trained, TOK, [student_prompt(example)], max_new_tokens=40)
    assert generated.text.strip() == target.strip()
