"""DPO through TRL: the recipe's rows train a real (tiny) causal LM with trl.DPOTrainer on CPU, and the
weights it saves differ from the ones it started from."""

from __future__ import annotations

import pytest
import torch

import baselines_testdata as D
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

    from transformers import AutoModelForCausalLM

    after = AutoModelForCausalLM.from_pretrained(tmp_path / "out").state_dict()
    changed = [k for k, v in before.items() if not torch.equal(v, after[k])]
    assert changed, "DPO left every weight unchanged"


def test_train_dpo_rejects_bad_input(tmp_path):
    tok = D.tokenizer()
    with pytest.raises(ValueError, match="no preference rows"):
        train_dpo(tiny_llama(tok), tok, [], DPOSettings(), tmp_path)
    with pytest.raises(ValueError, match=r"row 0 lacks text field\(s\) \['rejected'\]"):
        train_dpo(tiny_llama(tok), tok, [{"prompt": "Q", "chosen": " A"}], DPOSettings(), tmp_path)
    with pytest.raises(ValueError, match="unknown key"):
        train_dpo(tiny_llama(tok), tok, [{"prompt": "Q", "chosen": " A", "rejected": " B"}], {"betta": 1}, tmp_path)
