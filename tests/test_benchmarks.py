"""Official BBH, AGIEval and ARC loaders: counts, splits, answer formats, the release's broken items, sources."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import re
import threading
from collections import Counter
from pathlib import Path

import pytest

from cotdistill.config import DataConfig
from cotdistill.data import agieval, arc, bbh, load_examples
from cotdistill.errors import CotdistillError, RecordError


@pytest.fixture(scope="module")
def official(shared_data):
    return bbh.load_bbh(path=str(shared_data / "bbh"))


def test_official_bbh_has_27_tasks_6511_questions_split_4_to_1(official, shared_data):
    assert len(official) == 6511
    assert Counter(e.split for e in official) == {"train": 5209, "test": 1302}
    per_task = Counter(e.task for e in official)
    assert sorted(per_task) == bbh.TASKS and len(per_task) == 27
    for task, n in per_task.items():
        file_items = json.loads((shared_data / "bbh" / "tasks" / f"{task}.json").read_text())["examples"]
        assert n == len(file_items)
        assert sum(e.split == "train" for e in official if e.task == task) == round(0.8 * n)
        assert [e.id for e in official if e.task == task] == [f"bbh/{task}/{i}" for i in range(n)]


def test_bbh_split_is_seeded_random_not_the_files_tail(official):
    navigate = [e for e in official if e.task == "navigate"]
    assert any(e.split == "test" for e in navigate[:200])  # the tail-200 split would have none here
    again = bbh.load_bbh(["navigate"])  # $COTDISTILL_DATA: the same files, the same seed
    assert again == navigate
    reseeded = bbh.load_bbh(["navigate"], seed=1)
    assert [e.split for e in reseeded] != [e.split for e in navigate]
    assert Counter(e.split for e in reseeded) == Counter(e.split for e in navigate)


def test_bbh_answers_fit_each_tasks_format(official):
    formats = {e.task: e.answer_format for e in official}
    assert formats["navigate"] == formats["formal_fallacies"] == formats["sports_understanding"] == "label"
    assert formats["object_counting"] == formats["multistep_arithmetic_two"] == "number"
    assert formats["dyck_languages"] == formats["word_sorting"] == "text"
    assert formats["date_understanding"] == formats["geometric_shapes"] == "choice"
    for e in official:
        if e.answer_format == "choice":
            index = ord(e.answer[1]) - ord("A")
            assert re.fullmatch(r"\([A-Z]\)", e.answer) and 0 <= index < len(e.choices), e.id
            assert f"\n{e.answer} {e.choices[index]}" in e.question, e.id
        elif e.answer_format == "label":
            assert e.answer in e.choices, e.id
        elif e.answer_format == "number":
            assert re.fullmatch(r"-?\d+", e.answer), e.id


def test_bbh_broken_items_are_repaired_as_documented(official):
    by_id = {e.id: e for e in official}
    # golds written as option text the release split at its commas -> the letter the split starts at
    assert by_id["bbh/movie_recommendation/163"].answer == "(A)"
    assert by_id["bbh/ruin_names/99"].answer == "(I)"
    assert by_id["bbh/ruin_names/144"].answer == "(C)"
    snark = by_id["bbh/snarks/88"]  # truncated in the task file, restored from the release's outputs
    assert len(snark.choices) == 2 and snark.question.endswith("give the champions a trophy every year")
    assert snark.answer == "(A)"


def test_bbh_task_descriptions_come_from_the_cot_prompt_files(official, shared_data):
    descriptions = {e.task: e.task_description for e in official}
    assert descriptions["navigate"].startswith("Given a series of navigation instructions")
    assert descriptions["temporal_sequences"].startswith("Answer questions about which times")  # label dropped
    assert all(descriptions.values())
    prompt = (shared_data / "bbh" / "cot-prompts" / "word_sorting.txt").read_text()
    assert bbh.task_description(prompt) == descriptions["word_sorting"] == "Sort a list of words."


def _write_task(folder: Path, task: str, rows: list) -> None:
    (folder / "tasks").mkdir(parents=True, exist_ok=True)
    (folder / "tasks" / f"{task}.json").write_text(json.dumps({"canary": "x", "examples": rows}))
    (folder / "cot-prompts").mkdir(exist_ok=True)
    (folder / "cot-prompts" / f"{task}.txt").write_text("canary\n-----\nFind your way home.\n\nQ: ...")


def test_bbh_reads_a_users_folder_and_names_a_broken_item(tmp_path):
    rows = [{"input": f"Walk {i} steps. Home?\nOptions:\n- Yes\n- No", "target": "Yes" if i % 2 else "No"}
            for i in range(10)]
    _write_task(tmp_path, "navigate", rows)
    examples = load_examples(DataConfig(source="bbh", subtasks=["navigate"], split=None, path=str(tmp_path)))
    assert [e.id for e in examples] == [f"bbh/navigate/{i}" for i in range(10)]
    assert Counter(e.split for e in examples) == {"train": 8, "test": 2}
    assert {e.task_description for e in examples} == {"Find your way home."}
    _write_task(tmp_path, "navigate", rows[:3] + [{"input": "Home?", "target": "Maybe"}])
    with pytest.raises(CotdistillError, match=r"navigate\.json: examples\[3\]: field 'target': 'Maybe'"):
        bbh.load_bbh(["navigate"], path=str(tmp_path))
    with pytest.raises(CotdistillError, match="unknown BBH task 'navigation'"):
        bbh.load_bbh(["navigation"], path=str(tmp_path))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_pinned_download_checks_every_files_sha256(shared_data, tmp_path, monkeypatch):
    # A loopback server in the release's layout (bbh/<task>.json, cot-prompts/<task>.txt).
    site = tmp_path / "site" / "release"
    (site / "bbh").mkdir(parents=True)
    (site / "cot-prompts").mkdir()
    for task in bbh.TASKS:
        (site / "bbh" / f"{task}.json").write_bytes((shared_data / "bbh" / "tasks" / f"{task}.json").read_bytes())
        (site / "cot-prompts" / f"{task}.txt").write_bytes((shared_data / "bbh" / "cot-prompts" / f"{task}.txt").read_bytes())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site.parent)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.delenv("COTDISTILL_OFFLINE", raising=False)
        monkeypatch.setattr(bbh, "RELEASE_URL", f"http://127.0.0.1:{server.server_address[1]}/release")
        tampered = site / "bbh" / "snarks.json"
        tampered.write_bytes(tampered.read_bytes().replace(b"sarcastic", b"ironic", 1))
        with pytest.raises(CotdistillError, match=r"snarks\.json: sha256 mismatch"):
            bbh.download_release(tmp_path / "cache" / "bbh")
        assert not (tmp_path / "cache" / "bbh").exists() and not list((tmp_path / "cache").iterdir())
        tampered.write_bytes((shared_data / "bbh" / "tasks" / "snarks.json").read_bytes())
        folder = bbh.download_release(tmp_path / "cache" / "bbh")
    finally:
        server.shutdown()
    for task, (task_sha, _) in bbh.RELEASE_SHA256.items():
        assert hashlib.sha256((folder / "tasks" / f"{task}.json").read_bytes()).hexdigest() == task_sha
    assert len(bbh.load_bbh(path=str(folder))) == 6511


def test_agieval_has_the_8_english_subsets_2546_questions(shared_data):
    examples = load_examples(DataConfig(source="agieval"))
    assert Counter(e.task for e in examples) == agieval.SUBSETS and len(examples) == 2546
    assert all(e.split == "test" and e.task_description == "" and e.answer_format == "choice" for e in examples)
    first = examples[0]  # aqua-rat line 1: no passage, options "(A)5(√3 + 1)" ...
    assert first.id == "agieval/aqua-rat/1" and first.question.startswith("Question: A car is being driven")
    assert "\n(A) 5(√3 + 1)\n" in first.question and first.answer == "(A)"
    with_passage = next(e for e in examples if e.task == "lsat-rc")
    assert with_passage.question.startswith("Passage: ") and "\nQuestion: " in with_passage.question


def test_agieval_logiqa_options_written_out_of_order_keep_their_gold(tmp_path):
    rows = [
        {"passage": "P.", "question": "Q1?", "options": ["(A)w", "(C)x", "(B)y", "(D)z"], "label": "B"},
        {"passage": "P.", "question": "Q2?", "options": ["A w", "B? x", "y", "(D)z"], "label": "C"},
    ]
    path = tmp_path / "logiqa-en.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    first, second = agieval.load_agieval(path=str(path))
    assert first.choices == ["w", "x", "y", "z"] and first.answer == "(C)"  # "(B)y" is written third
    assert second.choices == ["w", "x", "y", "z"] and second.answer == "(C)"
    path.write_text(json.dumps({**rows[0], "label": "F"}) + "\n")
    with pytest.raises(RecordError, match=r"logiqa-en\.jsonl:1: field 'label': 'F'"):
        agieval.load_agieval(path=str(path))


def test_arc_easy_from_edits_json_with_numbered_options_relettered(shared_data):
    examples = load_examples(DataConfig(source="arc"))
    assert len(examples) == 2376 and {e.task for e in examples} == {"ARC-Easy"}
    assert all(e.id.startswith("arc-e/ARC-Easy/") and e.task_description == "" for e in examples)
    numbered = next(e for e in examples if "composed of" in e.question)
    assert numbered.question.endswith("(A) air\n(B) elements\n(C) water\n(D) soil") and numbered.answer == "(B)"


def test_arc_challenge_from_any_path_in_both_layouts(tmp_path):
    edit_rows = [{"input": "Question: Which is a metal?\nOptions:\n(A) wood\n(B) iron\n(C) glass", "target": "(B)"}]
    (tmp_path / "ARC-Challenge-Test.json").write_text(json.dumps(edit_rows))
    hub_rows = [{"id": "Mercury_1", "question": "Which is a metal?",
                 "choices": {"text": ["wood", "iron", "glass"], "label": ["1", "2", "3"]}, "answerKey": "2"}]
    hub_file = tmp_path / "hub" / "arc_challenge_test.jsonl"
    hub_file.parent.mkdir()
    hub_file.write_text("".join(json.dumps(r) + "\n" for r in hub_rows))
    (from_edit,) = load_examples(DataConfig(source="arc", subtasks=["ARC-Challenge"], path=str(tmp_path)))
    (from_hub,) = arc.load_arc(path=str(hub_file))
    assert from_edit.id == from_hub.id == "arc-c/ARC-Challenge/0"
    assert from_edit.question == from_hub.question and from_edit.answer == from_hub.answer == "(B)"
    hub_file.write_text(json.dumps({**hub_rows[0], "answerKey": "D"}) + "\n")
    with pytest.raises(RecordError, match=r"arc_challenge_test\.jsonl:1: field 'answerKey'"):
        arc.load_arc(path=str(hub_file))
    with pytest.raises(CotdistillError, match="no ARC-Easy file"):
        arc.load_arc(["ARC-Easy"], path=str(tmp_path))
