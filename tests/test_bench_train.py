"""The training benches' own arithmetic and method: MFU's FLOPs count, and the memory cap of bench/train_memory.py."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1] / "bench"


def _bench(name: str):
    sys.path.insert(0, str(BENCH))  # the benches import their shared trainer_pair module by name
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))


def test_model_flops_per_token_are_six_n_plus_causal_attention():
    gpu = _bench("gpu_throughput")
    shape = {"num_hidden_layers": 2, "hidden_size": 8}
    # two sequences of 1 and 3 tokens: contexts 1 | 1, 2, 3 -> 7 attended positions over 4 tokens
    assert gpu.flops_per_token(shape, 100, [1, 3]) == pytest.approx(6 * 100 + 12 * 2 * 8 * 7 / 4)
    assert gpu.peak_tflops("NVIDIA H200") == 989.0 and gpu.peak_tflops("some new chip") is None


@pytest.mark.slow
def test_a_batch_over_the_memory_cap_is_reported_as_not_fitting_and_one_under_it_fits(tmp_path):
    """The child process caps its own address space; an allocation past it must come back as 'does not fit'
    (not a crash), and a run under the cap must report a peak above what the model needed at load."""
    memory = _bench("train_memory")
    pair = _bench("trainer_pair")
    from cotdistill.models import SMOLLM2_ALIAS, load_tokenizer

    model_dir = pair.scratch_llama(tmp_path / "model", load_tokenizer(SMOLLM2_ALIAS), vocab_size=8000,
                                   hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                   num_attention_heads=2, num_key_value_heads=2)
    base = argparse.Namespace(steps=2, vocab=8000)
    # TRL's full logits for 4 x 2048 positions of an 8,000-token vocabulary are 0.5 GB a copy
    tight = memory._spawn("trl", 2048, 4, model_dir, argparse.Namespace(cap_gb=0.9, **vars(base)))
    assert tight["fits"] is False and "error" in tight, tight
    assert "child exited" not in tight["error"], tight  # the cap was hit inside training, and caught
    roomy = memory._spawn("weighted", 64, 1, model_dir, argparse.Namespace(cap_gb=4.0, **vars(base)))
    assert roomy["fits"] is True, roomy
    assert roomy["peak_gb"] >= roomy["load_gb"] > 0 and roomy["tokens_per_s"] > 0


@pytest.mark.slow
def test_the_gpu_script_runs_end_to_end_in_its_smoke_setting(tmp_path):
    """No GPU is at hand in CI: --smoke trains the tiny model with both trainers and writes comparable numbers."""
    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, str(BENCH / "gpu_throughput.py"), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, cwd=BENCH.parent, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["smoke"] and result["weighted"]["tokens_per_s"] > 0 and result["trl"]["tokens_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["weighted"]["tokens_per_s"] / result["trl"]["tokens_per_s"])
