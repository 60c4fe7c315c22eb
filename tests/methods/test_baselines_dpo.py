"""DPO through TRL: the recipe's rows train a real (tiny) causal LM with trl.DPOTrainer on CPU, and the
weights it saves differ from the ones it started from."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

import baselines_testdata as D
from cotdistill.errors import CotdistillError
from cotdistill.methods import REGISTRY, MethodInputs
from cotdistill.methods.dpo import DPOSettings, train_dpo


def tiny_llama(tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(config)


@pytest.mark.slow
def test_tiny_dpo_run_completes_and_changes_the_weights(tmp_path):
    tok = D.tokenizer()
    model = tiny_llama(tok)
    model.save_pretrained(tmp_path / "start")
    tok.save_pretrained(tmp_path / "start")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    [stage] = REGISTRY["dpo"].build(MethodInputs(examples=D.EXAMPLES, pairs=D.PAIRS, tokenizer=tok),
                                    {"sft_first": False, "beta": 0.2})
    rows = stage.extra["rows"] * 2  # six rows: two steps of three
    settings = {"beta": stage.extra["beta"], "learning_rate": 1e-3, "max_steps": 2, "batch_size": 3,
                "device": "cpu", "logging_steps": 1}
    metrics = train_dpo(tmp_path / "start", tok, rows, settings, tmp_path / "out")
    assert metrics["steps"] == 2 and metrics["settings"]["beta"] == 0.2
    assert torch.isfinite(torch.tensor(metrics["train_loss"]))
    after = AutoModelForCausalLM.from_pretrained(tmp_path / "out").state_dict()
    changed = [k for k, v in before.items() if not torch.equal(v, after[k])]
    assert changed, "DPO left every weight unchanged"


def test_train_dpo_rejects_bad_input(tmp_path):
    tok = D.tokenizer()
    with pytest.raises(ValueError, match="no preference rows"):
        train_dpo(tiny_llama(tok), tok, [], DPOSettings(), tmp_path)
    with pytest.raises(ValueError, match=r"row 0 lacks text field\(s\) \['rejected'\]"):
        train_dpo(tiny_llama(tok), tok, [{"prompt": "Q", "chosen": " A"}], DPOSettings(), tmp_path)
    with pytest.raises(CotdistillError, match="'betta'"):
        train_dpo(tiny_llama(tok), tok, [{"prompt": "Q", "chosen": " A", "rejected": " B"}], {"betta": 1}, tmp_path)


def _lab_inputs(tmp_path, tok) -> MethodInputs:
    """The lab study's training data, read back from the study's own teacher stage."""
    from cotdistill.config import LabData, LabTeacher
    from cotdistill.pipeline import RunFolder
    from cotdistill.records import DualPair, Example, Rationale, read_jsonl
    from cotdistill.study import lab_examples_stage, lab_teacher_stage

    run = RunFolder(tmp_path / "run")
    examples = lab_examples_stage(run, LabData(train_n=24, test_n=4, ood=False))
    teacher = lab_teacher_stage(run, LabTeacher(mistake_rate=0.3, samples=2), examples)
    return MethodInputs(examples=[e for e in read_jsonl(examples, Example) if e.split == "train"],
                        rationales=read_jsonl(teacher / "rationales.jsonl", Rationale),
                        pairs=read_jsonl(teacher / "pairs.jsonl", DualPair), tokenizer=tok)


def test_dpo_is_not_std_cot_its_sft_stage_is_edits_stage1_and_trains_another_model(tmp_path):
    """The lab study's DPO row equalled Std-CoT seed 0: its SFT stage saw no rectified CoT. It must train on
    D+ and D-+ (EDIT's stage 1), so from the same start and seed it ends elsewhere than Std-CoT."""
    from cotdistill.train.trainer import TrainSettings, train_stages

    tok = D.tokenizer()
    inputs = _lab_inputs(tmp_path, tok)
    dpo_sft = REGISTRY["dpo"].build(inputs, {})[0]
    [edit_sft] = REGISTRY["edit"].build(inputs, {"stages": ["sft"]})
    [std] = REGISTRY["std_cot"].build(inputs, {})
    token_ids = lambda stage: [(s.prompt_ids, s.target_ids) for s in stage.sequences]  # noqa: E731
    assert token_ids(dpo_sft) == token_ids(edit_sft)
    rectified = {r.id for r in inputs.rationales if r.origin == "rectified"}
    assert rectified and len(dpo_sft.sequences) == len(std.sequences) + len(rectified)

    settings = TrainSettings(learning_rate=1e-2, epochs=1, batch_size=8, seed=0, logging_steps=1)
    trained = {}
    for name, stage in (("dpo", dpo_sft), ("std_cot", std)):
        tiny_llama(tok).save_pretrained(tmp_path / f"start-{name}")
        trained[name] = AutoModelForCausalLM.from_pretrained(
            train_stages(tmp_path / f"start-{name}", tok, [stage], settings, tmp_path / name)).state_dict()
    assert any(not torch.equal(v, trained["std_cot"][k]) for k, v in trained["dpo"].items())


def test_dpo_settings_from_params_reach_trls_config(tmp_path):
    """EDIT's A.8 DPO setting (lr 1e-5, cosine, warmup 0.3, beta 0.1, 10 epochs, batch 16) is configurable from
    the method's params, and what TRL's DPOTrainer ran with (its saved DPOConfig) is what the params said."""
    from cotdistill.study import run_stages
    from cotdistill.train.trainer import TrainSettings

    tok = D.tokenizer()
    tiny_llama(tok).save_pretrained(tmp_path / "start")
    params = {"sft_first": False, "beta": 0.2,
              "dpo": {"learning_rate": 1e-5, "scheduler": "cosine", "warmup_ratio": 0.3, "epochs": 2,
                      "batch_size": 16, "max_length": 128}}
    stages = REGISTRY["dpo"].build(MethodInputs(examples=D.EXAMPLES, pairs=D.PAIRS, tokenizer=tok), params)
    final, _, _ = run_stages(tmp_path / "start", tok, stages, TrainSettings(seed=3), tmp_path / "out")
    args = torch.load(final / "training_args.bin", weights_only=False)
    assert (args.learning_rate, args.lr_scheduler_type, args.warmup_steps) == (1e-5, "cosine", 0.3)
    assert (args.beta, args.num_train_epochs, args.per_device_train_batch_size) == (0.2, 2, 16)
    assert (args.max_length, args.seed) == (128, 3)


def test_dpo_defaults_are_edits_appendix_a8_setting():
    [stage] = REGISTRY["dpo"].build(MethodInputs(examples=D.EXAMPLES, pairs=D.PAIRS, tokenizer=D.tokenizer()),
                                    {"sft_first": False})
    settings = {**stage.extra["settings"], "beta": stage.extra["beta"]}
    paper = {"beta": 0.1, "learning_rate": 1e-5, "scheduler": "cosine", "warmup_ratio": 0.3, "epochs": 10,
             "batch_size": 16}
    assert {k: settings[k] for k in paper} == paper
