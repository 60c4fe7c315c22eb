import json

import pytest

from cotdistill.errors import RecordError
from cotdistill.records import DualPair, Example, JsonlJournal, Rationale, read_jsonl, write_jsonl


def example(i: int = 0) -> Example:
    return Example(id=f"t/{i}", task="t", question="2 + 2 =", answer="4", answer_format="number")


def test_records_round_trip_through_jsonl(tmp_path):
    rationale = Rationale(id="r1", example_id="t/0", text="2 + 2 = 4. Therefore, the answer is 4.", answer="4", correct=True)
    wrong = rationale.model_copy(update={"id": "r2", "text": "2 + 2 = 5.", "answer": "5", "correct": False})
    pair = DualPair(id="p1", example_id="t/0", chosen=rationale, rejected=wrong, kind="positive")
    for model, records in [(Example, [example(0), example(1)]), (Rationale, [rationale, wrong]), (DualPair, [pair])]:
        path = tmp_path / f"{model.__name__}.jsonl"
        assert write_jsonl(path, records) == len(records)
        assert read_jsonl(path, model) == records


def test_malformed_json_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(example().model_dump()) + "\n{not json\n")
    with pytest.raises(RecordError, match=r"bad\.jsonl:2: invalid JSON"):
        read_jsonl(path, Example)


@pytest.mark.parametrize(
    "change, field",
    [({"question": None}, "question"), ({"answer_format": "letters"}, "answer_format"), ({"extra": 1}, "extra")],
)
def test_bad_field_names_file_line_and_field(tmp_path, change, field):
    good = example().model_dump()
    bad = {**good, **change}
    if change.get("question", 0) is None:
        del bad["question"]
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(bad) + "\n")
    with pytest.raises(RecordError) as info:
        read_jsonl(path, Example)
    assert (info.value.line, info.value.field) == (3, field)
    assert f"x.jsonl:3: field '{field}'" in str(info.value)


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "out.jsonl"
    write_jsonl(path, [example(0)])

    def records():
        yield example(1)
        raise RuntimeError("crash mid-way")

    with pytest.raises(RuntimeError):
        write_jsonl(path, records())
    assert read_jsonl(path, Example) == [example(0)]
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_journal_drops_a_torn_last_line_and_keeps_appending(tmp_path):
    path = tmp_path / "j.jsonl"
    with JsonlJournal(path) as journal:
        journal.append({"id": 1})
        journal.append({"id": 2})
    with open(path, "a") as fh:
        fh.write('{"id": 3, "te')  # a crash in the middle of a write
    journal = JsonlJournal(path)
    assert journal.load() == [{"id": 1}, {"id": 2}]
    with journal:
        journal.append({"id": 3})
    assert JsonlJournal(path).load() == [{"id": 1}, {"id": 2}, {"id": 3}]
