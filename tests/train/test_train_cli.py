"""`cotdistill train` end to end, bad input, and packing refused where attention mixes packed sequences."""

from __future__ import annotations

import pytest
import torch
from train_util import VOCAB, random_sequences, tiny_llama
from transformers import AutoModelForCausalLM, OPTConfig, OPTForCausalLM

from cotdistill.errors import CotdistillError
from cotdistill.methods.base import TrainingStage
from cotdistill.records import write_jsonl
from cotdistill.train.cli import train_command
from cotdistill.train.collate import check_packing_isolates
from cotdistill.train.trainer import TrainSettings, train_stages
from cotdistill.cli import build_parser


@pytest.mark.slow
def test_train_command_writes_a_loadable_model_with_lora_merged(tmp_path):
    """Property: the command reads WeightedSequence JSONL, trains a LoRA, and leaves a plain model folder."""
    tiny_llama(seed=1).save_pretrained(tmp_path / "model")
    write_jsonl(tmp_path / "a.jsonl", random_sequences(6, seed=1))
    write_jsonl(tmp_path / "b.jsonl", random_sequences(6, seed=2))
    args = build_parser().parse_args([
        "train", "--sequences", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), "--model",
        str(tmp_path / "model"), "--out", str(tmp_path / "out"), "--lora-r", "4", "--merge-between",
        "--max-steps", "1", "--batch-size", "3", "--packing", "--negative-nll-cap", "6"])
    train_command(args)
    trained = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert not any("lora" in k for k in trained.state_dict())
    assert (tmp_path / "out" / "stages" / "01-b" / "base").is_dir()  # stage b began from a merged base


def test_bad_sequences_line_is_reported_with_file_and_line(tmp_path, capsys):
    from cotdistill.cli import main

    (tmp_path / "bad.jsonl").write_text(
        '{"id": "x", "prompt_ids": [1], "target_ids": [2, 3], "target_weights": [1.0]}\n')
    code = main(["train", "--sequences", str(tmp_path / "bad.jsonl"), "--model", str(tmp_path), "--out",
                 str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "bad.jsonl" in err and ":1" in err and "target_weights" in err


def test_packing_refused_for_a_model_whose_attention_mixes_packed_sequences(tmp_path):
    """Property: OPT ignores position_ids boundaries, so packing it would leak tokens across sequences: refuse."""
    torch.manual_seed(0)
    opt = OPTForCausalLM(OPTConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                   ffn_dim=64, word_embed_proj_dim=32, max_position_embeddings=64))
    with pytest.raises(CotdistillError, match="packing"):
        check_packing_isolates(opt, VOCAB)
    settings = TrainSettings(packing=True, max_steps=1)
    with pytest.raises(CotdistillError, match="packed sequences attend"):
        train_stages(opt, None, [TrainingStage("s", random_sequences(4))], settings, tmp_path / "o")
    check_packing_isolates(tiny_llama(), VOCAB)  # Llama with sdpa keeps them apart


def test_unknown_instance_weighting_fails_before_training(tmp_path):
    stage = TrainingStage("s", random_sequences(4), instance_weighting="no-such-weighting")
    with pytest.raises(CotdistillError, match="no-such-weighting"):
        train_stages(tiny_llama(), None, [stage], TrainSettings(max_steps=1), tmp_path / "o")
