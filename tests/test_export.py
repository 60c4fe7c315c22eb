"""`cotdistill export`: every format is read back by the library that consumes it (`datasets` loads each
file; TRL recognises the prompt-completion, preference and conversational forms and renders the chat ones with
a real chat template; LLaMA-Factory's dataset_info entry names columns the file has), and the rows carry only
correct, complete CoTs (supervised) or right/wrong pairs of one question (pairwise)."""

from __future__ import annotations

import json

import pytest
from datasets import load_dataset
from trl.data_utils import is_conversational, maybe_apply_chat_template, maybe_convert_to_chatml

from cotdistill.cli import main
from cotdistill.export import FORMATS
from cotdistill.lab.generate import generate_examples
from cotdistill.records import DualPair, Example, Rationale, WeightedSequence, read_jsonl, write_jsonl


@pytest.fixture(scope="module")
def teach_run(tmp_path_factory):
    """A `cotdistill teach` run of the scripted teacher: graded CoTs (some wrong) and dual pairs."""
    root = tmp_path_factory.mktemp("teach")
    write_jsonl(root / "q.jsonl", generate_examples("navigate", 12, 0))
    assert main(["teach", "--backend", "scripted", "--mistake-rate", "0.4", "--data", "file", "--data-file",
                 str(root / "q.jsonl"), "--run-dir", str(root / "run")]) == 0
    return root / "run"


def _export(run, fmt: str, out) -> None:
    assert main(["export", str(run), "--format", fmt, "--out", str(out)]) == 0


def _load(path):
    return load_dataset("json", data_files=str(path), split="train")


def test_supervised_rows_are_the_correct_complete_cots_in_trls_prompt_completion_form(teach_run, tmp_path):
    _export(teach_run, "trl-sft", tmp_path)
    rows = _load(tmp_path / "sft.jsonl")
    rationales = read_jsonl(teach_run / "rationales.jsonl", Rationale)
    good = [r for r in rationales if r.correct and not r.truncated]
    assert 0 < len(good) < len(rationales)  # wrong CoTs exist and are left out
    assert rows.column_names == ["prompt", "completion"] and len(rows) == len(good)
    assert not is_conversational(rows[0])
    assert sorted(rows["completion"]) == sorted(f" {r.text}" for r in good)
    assert all(p.endswith("\n\nA:") for p in rows["prompt"])  # the prompt the methods train under


def test_preference_rows_pair_a_right_and_a_wrong_cot_for_trl(teach_run, tmp_path):
    _export(teach_run, "trl-dpo", tmp_path)
    rows = _load(tmp_path / "dpo.jsonl")
    pairs = read_jsonl(teach_run / "pairs.jsonl", DualPair)
    assert rows.column_names == ["prompt", "chosen", "rejected"] and len(rows) == len(pairs) > 0
    assert not is_conversational(rows[0])
    assert maybe_apply_chat_template(rows[0], None) == rows[0]  # standard (not chat) preference data
    assert [(r["chosen"], r["rejected"]) for r in rows] == [(f" {p.chosen.text}", f" {p.rejected.text}") for p in pairs]


def test_openai_and_sharegpt_rows_are_chats_trl_renders_with_a_real_template(teach_run, tmp_path, smollm2_dir):
    from cotdistill.models import load_tokenizer

    tokenizer = load_tokenizer(str(smollm2_dir))
    _export(teach_run, "openai", tmp_path)
    _export(teach_run, "sharegpt", tmp_path)
    openai = _load(tmp_path / "openai.jsonl")
    sharegpt = _load(tmp_path / "sharegpt.jsonl")
    assert len(openai) == len(sharegpt) > 0
    first = openai[0]
    assert is_conversational(first) and [m["role"] for m in first["messages"]] == ["user", "assistant"]
    assert "answer is X" not in first["messages"][0]["content"]  # the format is described, not templated
    converted = maybe_convert_to_chatml(sharegpt[0])["messages"]  # TRL's from/value -> role/content
    assert [m["role"] for m in converted] == ["human", "gpt"]  # ShareGPT's own role names
    assert [m["content"] for m in converted] == [m["content"] for m in first["messages"]]
    text = maybe_apply_chat_template(first, tokenizer)["text"]
    assert first["messages"][1]["content"] in text and "<|im_start|>assistant" in text


@pytest.mark.parametrize("fmt, file_name, columns", [
    ("alpaca", "alpaca.json", ["instruction", "input", "output"]),
    ("alpaca-pairwise", "alpaca_pairwise.json", ["instruction", "input", "chosen", "rejected"]),
])
def test_llama_factory_layouts_come_with_a_dataset_info_entry_naming_real_columns(teach_run, tmp_path, fmt,
                                                                                   file_name, columns):
    _export(teach_run, fmt, tmp_path)
    rows = _load(tmp_path / file_name)
    assert rows.column_names == columns and len(rows) > 0
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    (entry,) = info.values()
    assert entry["file_name"] == file_name and entry.get("ranking", False) == (fmt == "alpaca-pairwise")
    assert set(entry["columns"].values()) <= set(columns)


def test_both_llama_factory_datasets_share_one_dataset_info(teach_run, tmp_path):
    _export(teach_run, "alpaca", tmp_path)
    _export(teach_run, "alpaca-pairwise", tmp_path)
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert set(info) == {"cotdistill", "cotdistill_pairwise"}


def test_weighted_sequences_export_as_text_and_negative_weights_are_left_out(tmp_path, smollm2_dir, capsys):
    from cotdistill.models import load_tokenizer

    tokenizer = load_tokenizer(str(smollm2_dir))
    prompt = tokenizer("Q: Is ice cold?\n\nA:", add_special_tokens=False)["input_ids"]
    target = tokenizer(" It is frozen water. Therefore, the answer is Yes.", add_special_tokens=False)["input_ids"]
    sequences = [
        WeightedSequence(id="keep", prompt_ids=prompt, target_ids=target, target_weights=[1.0] * len(target)),
        WeightedSequence(id="unlikely", prompt_ids=prompt, target_ids=target,
                         target_weights=[-0.025] + [0.0] * (len(target) - 1)),
    ]
    write_jsonl(tmp_path / "s.jsonl", sequences)
    assert main(["export", "--sequences", str(tmp_path / "s.jsonl"), "--tokenizer", str(smollm2_dir),
                 "--format", "trl-sft", "--out", str(tmp_path / "out")]) == 0
    assert "left out 1 sequences with negative weights" in capsys.readouterr().out
    rows = _load(tmp_path / "out" / "sft.jsonl")
    assert rows[:] == {"prompt": ["Q: Is ice cold?\n\nA:"],
                       "completion": [" It is frozen water. Therefore, the answer is Yes."]}


def test_bad_requests_fail_with_one_clear_line(tmp_path, capsys):
    write_jsonl(tmp_path / "examples.jsonl", [Example(id="e", task="t", question="q", answer="a")])
    assert main(["export", str(tmp_path), "--format", "trl-dpo", "--out", str(tmp_path / "o")]) == 2
    assert "no pairs.jsonl to export" in capsys.readouterr().err
    assert main(["export", "--sequences", "s.jsonl", "--format", "trl-sft", "--out", str(tmp_path / "o")]) == 2
    assert "--sequences needs --tokenizer" in capsys.readouterr().err
    assert set(FORMATS) == {"trl-sft", "trl-dpo", "openai", "sharegpt", "alpaca", "alpaca-pairwise"}
