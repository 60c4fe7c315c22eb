"""WeightedTrainer through the real transformers.Trainer: accumulation, processes, stages, LoRA, resume, T5."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from train_util import VOCAB, random_sequences, tiny_llama
from transformers import AutoModelForCausalLM, T5Config, T5ForConditionalGeneration, TrainerCallback, TrainingArguments

from cotdistill.config import LoraConfig
from cotdistill.methods.base import TrainingStage
from cotdistill.records import write_jsonl
from cotdistill.train.collate import Seq2SeqCollator, sequence_features
from cotdistill.train.trainer import TrainSettings, WeightedTrainer, train_stages

REPO = Path(__file__).resolve().parents[2]
SGD_STEP = dict(optim="sgd", learning_rate=0.5, max_grad_norm=0.0, max_steps=1, logging_steps=1, save_steps=1000)


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _one_step(tmp_path: Path, name: str, batch: int, accum: int, packing: bool = False) -> dict[str, torch.Tensor]:
    settings = TrainSettings(batch_size=batch, grad_accum=accum, packing=packing, **SGD_STEP)
    stage = TrainingStage("s", random_sequences(8, seed=11))
    out = train_stages(tiny_llama(seed=3), None, [stage], settings, tmp_path / name)
    return _params(AutoModelForCausalLM.from_pretrained(out))


@pytest.mark.slow
def test_two_half_batches_accumulated_give_the_full_batch_update(tmp_path):
    """Property: 2 accumulation steps of 4 sequences make the same SGD update as one batch of 8 (and packed)."""
    start = _params(tiny_llama(seed=3))
    full = _one_step(tmp_path, "full", 8, 1)
    halves = _one_step(tmp_path, "halves", 4, 2)
    packed = _one_step(tmp_path, "packed", 4, 2, packing=True)
    assert max((full[k] - start[k]).abs().max().item() for k in start) > 1e-3  # the step really moved weights
    for k in full:
        assert torch.allclose(full[k], halves[k], atol=1e-6), k
        assert torch.allclose(full[k], packed[k], atol=1e-6), k


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path):
    """Property: `accelerate launch` with 2 CPU processes gives the single-process loss and gradients (SGD step)."""
    tiny_llama(seed=5).save_pretrained(tmp_path / "model")
    write_jsonl(tmp_path / "seq.jsonl", random_sequences(8, seed=12))
    # The launched side goes through the `cotdistill train` command; the single process calls train_stages.
    common = ["--sequences", "seq.jsonl", "--model", "model", "--grad-accum", "2", "--max-steps", "1",
              "--optim", "sgd", "--lr", "0.5", "--max-grad-norm", "0", "--logging-steps", "1", "--seed", "42"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    single = TrainSettings(batch_size=4, grad_accum=2, **SGD_STEP)
    train_stages(tmp_path / "model", None, [TrainingStage("seq", random_sequences(8, seed=12))], single,
                 tmp_path / "single")
    accelerate = Path(sys.executable).with_name("accelerate")
    launched = subprocess.run(
        [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "cotdistill", "train", *common,
         "--out", "ddp", "--batch-size", "2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert launched.returncode == 0, launched.stderr[-3000:]
    loss = {name: json.loads((tmp_path / name / "progress.json").read_text())["stages"][0]["loss"]
            for name in ("single", "ddp")}
    assert abs(loss["single"] - loss["ddp"]) < 1e-5, loss
    start = _params(AutoModelForCausalLM.from_pretrained(tmp_path / "model"))
    one = _params(AutoModelForCausalLM.from_pretrained(tmp_path / "single"))
    two = _params(AutoModelForCausalLM.from_pretrained(tmp_path / "ddp"))
    for k in start:  # SGD: update = -lr * gradient
        assert torch.allclose((one[k] - start[k]) / 0.5, (two[k] - start[k]) / 0.5, atol=1e-6), k


@pytest.mark.slow
def test_encoder_decoder_weighted_loss_equals_reference():
    """Property: for a T5 student the same token and instance weights apply to the decoder labels."""
    torch.manual_seed(0)
    config = T5Config(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, dropout_rate=0.0,
                      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    model = T5ForConditionalGeneration(config).double()
    seqs = random_sequences(4, seed=6)
    batch = Seq2SeqCollator(0)([sequence_features(s, encoder_decoder=True) for s in seqs])
    n = sum(len(s.target_ids) for s in seqs)
    ref = 0.0
    with torch.no_grad():
        for s in seqs:
            labels = torch.tensor([s.target_ids])
            logits = model(input_ids=torch.tensor([s.prompt_ids]), labels=labels).logits[0]
            nll = torch.nn.functional.cross_entropy(logits, labels[0], reduction="none")
            ref += s.instance_weight * sum(w * x for w, x in zip(s.target_weights, nll.tolist()))
    args = TrainingArguments(output_dir="/tmp/unused-t5", report_to=[], remove_unused_columns=False, use_cpu=True)
    loss = WeightedTrainer(model=model, args=args).compute_loss(model, batch).item()
    assert abs(loss - ref / n) < 1e-6


@pytest.mark.slow
def test_lora_stages_merge_into_a_plain_model(tmp_path):
    """Property: stage 2 starts from stage 1's LoRA merged into the base; the saved model has no adapters and
    computes what the PEFT model computed."""
    lora = LoraConfig(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
    settings = TrainSettings(batch_size=4, learning_rate=0.05, max_steps=2, lora=lora, logging_steps=1)
    stages = [TrainingStage("sft", random_sequences(8, seed=1), merge_lora_before=True),
              TrainingStage("krsl", random_sequences(8, seed=2), merge_lora_before=True, negative_nll_cap=5.0)]
    out = train_stages(tiny_llama(seed=7), None, stages, settings, tmp_path / "run")
    merged = AutoModelForCausalLM.from_pretrained(out)
    assert not any("lora" in k for k in merged.state_dict())
    base_after_sft = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "stages" / "01-krsl" / "base")
    assert not any("lora" in k for k in base_after_sft.state_dict())
    assert not torch.allclose(base_after_sft.model.layers[0].self_attn.q_proj.weight,
                              tiny_llama(seed=7).model.layers[0].self_attn.q_proj.weight)  # stage 1 merged in
    from peft import PeftModel

    peft = PeftModel.from_pretrained(base_after_sft, tmp_path / "run" / "stages" / "01-krsl" / "adapter")
    ids = torch.tensor([[3, 5, 7, 11, 13, 17]])
    with torch.no_grad():
        assert torch.allclose(peft(input_ids=ids).logits, merged(input_ids=ids).logits, atol=1e-5)


class _StopAt(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if "01-b" in args.output_dir and state.global_step == self.step:
            raise KeyboardInterrupt  # a crash after checkpoint-2 was written


@pytest.mark.slow
def test_interrupted_run_resumes_from_checkpoint_to_the_same_weights(tmp_path):
    """Property: a run killed mid-stage and rerun continues from its last checkpoint and ends where an
    uninterrupted run ends."""
    stages = [TrainingStage("a", random_sequences(6, seed=8)), TrainingStage("b", random_sequences(8, seed=9))]
    settings = TrainSettings(batch_size=2, learning_rate=1e-2, epochs=1, save_steps=2, logging_steps=1)
    straight = _params(AutoModelForCausalLM.from_pretrained(
        train_stages(tiny_llama(seed=4), None, stages, settings, tmp_path / "straight")))
    run = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        train_stages(tiny_llama(seed=4), None, stages, settings, run, callbacks=[_StopAt(3)])
    progress = json.loads((run / "progress.json").read_text())
    assert progress["done"] == 0  # stage a finished, b was cut at step 3
    assert (run / "stages" / "01-b" / "checkpoints" / "checkpoint-2").is_dir()
    resumed = _params(AutoModelForCausalLM.from_pretrained(
        train_stages(tiny_llama(seed=4), None, stages, settings, run)))
    for k in straight:
        assert torch.allclose(straight[k], resumed[k], atol=1e-6), k
    shutil.rmtree(run)


def test_epoch_decay_multiplies_the_learning_rate_once_per_epoch(tmp_path):
    """Property: EDIT's schedule, lr x 0.95 after each epoch and constant within one."""
    seen = []

    class Rates(TrainerCallback):
        def on_step_end(self, args, state, control, lr_scheduler=None, **kwargs):
            seen.append(lr_scheduler.get_last_lr()[0])

    settings = TrainSettings(batch_size=4, learning_rate=1e-3, epochs=3, epoch_decay=0.95, save_steps=1000)
    train_stages(tiny_llama(), None, [TrainingStage("s", random_sequences(8))], settings, tmp_path / "o",
                 callbacks=[Rates()])
    # 2 steps per epoch; the rate after step k applies to step k+1
    assert seen == pytest.approx([1e-3, 1e-3 * 0.95, 1e-3 * 0.95, 1e-3 * 0.95 ** 2, 1e-3 * 0.95 ** 2, 1e-3 * 0.95 ** 3])


def test_a_stage_may_choose_lora_or_full_fine_tuning_against_the_runs_setting(tmp_path):
    """Property: a stage's own `lora` choice overrides the run's. Full stage 1 then a LoRA stage 2 changes only
    the LoRA's target modules in stage 2; a LoRA stage 1 then a full stage 2 folds the adapter in and trains every
    weight."""
    lora = LoraConfig(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
    seqs = random_sequences(8, seed=1, negative=False)
    mlp = lambda m: m.model.layers[0].mlp.up_proj.weight  # noqa: E731  # a weight no LoRA targets

    full_then_lora = TrainSettings(batch_size=4, learning_rate=0.05, max_steps=2, logging_steps=1)
    stages = [TrainingStage("sft", seqs),
              TrainingStage("krsl", seqs, merge_lora_before=True, extra={"lora": lora.model_dump()})]
    out = train_stages(tiny_llama(seed=7), None, stages, full_then_lora, tmp_path / "a")
    after_sft = AutoModelForCausalLM.from_pretrained(out / "stages" / "00-sft" / "model")
    final = AutoModelForCausalLM.from_pretrained(out)
    assert (out / "stages" / "01-krsl" / "adapter" / "adapter_config.json").exists()
    assert torch.equal(mlp(final), mlp(after_sft)) and not torch.equal(mlp(after_sft), mlp(tiny_llama(seed=7)))
    q = lambda m: m.model.layers[0].self_attn.q_proj.weight  # noqa: E731
    assert not torch.allclose(q(final), q(after_sft))

    lora_then_full = replace(full_then_lora, lora=lora)
    stages = [TrainingStage("sft", seqs), TrainingStage("krsl", seqs, merge_lora_before=True, extra={"lora": False})]
    out = train_stages(tiny_llama(seed=7), None, stages, lora_then_full, tmp_path / "b")
    assert (out / "stages" / "00-sft" / "adapter").is_dir() and (out / "stages" / "01-krsl" / "model").is_dir()
    final = AutoModelForCausalLM.from_pretrained(out)
    assert not any("lora" in k for k in final.state_dict())
    assert not torch.equal(mlp(final), mlp(tiny_llama(seed=7)))  # stage 2 trained a weight stage 1's LoRA could not
