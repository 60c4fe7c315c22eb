import json
from collections import Counter

import pytest

from cotdistill.config import DataConfig
from cotdistill.data import bigbench, load_examples
from cotdistill.data.files import load_file, load_hub
from cotdistill.errors import CotdistillError, RecordError


def test_bbsub_is_61_tasks_outside_bbh():
    index = bigbench.bbsub_index()
    assert len(index) == 61
    assert not {name.split("/")[0] for name in index} & bigbench.BBH_SOURCE_TASKS
    examples = bigbench.load_bbsub(["anachronisms", "winowhy"])
    counts = Counter(e.task for e in examples)
    assert counts["anachronisms"] == min(100, index["anachronisms"]) and counts["winowhy"] == 100
    assert all(e.split == "test" and e.answer_format == "choice" for e in examples)


def test_limit_per_task_takes_a_small_sample(shared_data):
    examples = load_examples(DataConfig(source="bbh", subtasks=["navigate", "snarks"], limit_per_task=3))
    assert Counter(e.task for e in examples) == {"navigate": 3, "snarks": 3}
    assert all(e.split == "test" for e in examples)


def test_user_jsonl_with_field_mapping(tmp_path):
    path = tmp_path / "mine.jsonl"
    rows = [{"q": "1 + 1 =", "a": 2, "kind": "number"}, {"q": "Is ice cold?", "a": "Yes", "opts": ["Yes", "No"]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    examples = load_file(str(path), {"question": "q", "answer": "a", "answer_format": "kind", "choices": "opts"})
    assert [(e.id, e.task, e.answer, e.answer_format) for e in examples] == [
        ("mine/1", "mine", "2", "number"),
        ("mine/2", "mine", "Yes", "label"),
    ]


def test_user_csv_choices_and_missing_field_names_the_line(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text('question,answer,choices\n"Pick one",(B),"red|blue"\n"Another",,"a|b"\n')
    with pytest.raises(RecordError, match=r"mine\.csv:3: field 'answer': missing"):
        load_file(str(path))
    path.write_text('question,answer,choices\n"Pick one",(B),"red|blue"\n')
    (example,) = load_file(str(path))
    assert example.choices == ["red", "blue"] and example.answer_format == "choice"


def test_hub_loader_reads_a_local_dataset_folder(tmp_path):
    folder = tmp_path / "my_dataset"
    folder.mkdir()
    (folder / "train.jsonl").write_text(json.dumps({"input": "3 * 3 =", "target": "9"}) + "\n")
    examples = load_hub(str(folder), fields={"question": "input", "answer": "target"}, answer_format="number")
    assert [(e.task, e.question, e.answer) for e in examples] == [("my_dataset", "3 * 3 =", "9")]


def test_limit_per_task_applies_in_each_split_so_a_small_limit_keeps_test_questions(tmp_path):
    # a study loads every split at once; a limit taken before the split left it with train questions only
    path = tmp_path / "mine.jsonl"
    rows = [{"question": f"q{i}", "answer": "Yes", "split": "train" if i < 6 else "test"} for i in range(8)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    examples = load_examples(DataConfig(source="file", path=str(path), split=None, limit_per_task=2))
    assert Counter(e.split for e in examples) == {"train": 2, "test": 2}
