"""BB-sub golds the grader can read: option labels past Z, and every option BIG-bench gives full marks.

Each test runs twice: on the BIG-bench task files in the cache (when a run has fetched them; never downloaded
here) and on small task files written below with the content of the real items they quote.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cotdistill.data import bigbench
from cotdistill.grading import grade, is_correct, normalize_answer, option_label
from cotdistill.paths import cache_dir
from cotdistill.records import Example

GEOMETRY = "intersect_geometry_shapes_2"
GRE = "gre_reading_comprehension"

_GEOMETRY_TASK = {
    "name": "intersect_geometry",
    "description": "A task to find the number of intersection points between the shapes and lines specified by the "
    "given coordinates",
    "task_prefix": "Find the number of intersection points between the shapes and lines specified by the coordinates "
    "given.\n",
    "example_input_prefix": "\n",
    "keywords": ["logical reasoning", "mathematics", "arithmetic", "visual reasoning", "multiple choice",
                 "numerical response"],
}
# BIG-bench intersect_geometry/shapes_2, example 19802: 41 options, the counts 0..40; the answer is 4.
_GEOMETRY_19802 = {
    "input": "There is a polygon with coordinates [(-1.2, -4.3), (4.0, 2.1), (-3.2, 2.4)]. There is a circle centered "
    "at (-1.5, -0.2) with radius 4.0. How many intersection points are there?",
    "target_scores": {str(n): int(n == 4) for n in range(41)},
}
# BIG-bench gre_reading_comprehension, example 4: two of its three options score 1.
_GRE_4 = {
    "input": "For much of the 20th century, paleontologists theorized that dinosaurs, like reptiles, were ectothermic, "
    "their body temperature regulated externally. These scientists, however, based their conclusions on faulty "
    "reasoning, claiming that scaly skin was common to all ectotherms (birds, which are ectothermic, do not have "
    "scaly skin) and that the dinosaur\u2019s size could account for ectothermy (some adult dinosaurs weighed as "
    "little as ten pounds). Supplanting this theory is an entirely new line of thought: dinosaurs were actually "
    "mesothermic, neither warm- nor cold-blooded. By taking this middle ground, some paleontologists maintain that "
    "dinosaurs were faster than a similar-sized reptile yet did not require as much food as a similar-sized mammal. "
    "To substantiate this theory, paleontologists intend to study how birds, the dinosaur\u2019s closest extant "
    "relative, might have at one time been mesothermic. Which of the following does the passage imply regarding "
    "birds?",
    "target_scores": {
        "They possess certain traits that are not common to all ectotherms.": 1,
        "They required more food than a similarly-sized mammal.": 0,
        "Over time they might have undergone a change in how they regulate body temperature.": 1,
    },
}
_GRE_TASK = {
    "name": GRE,
    "description": "Given a passage from a GRE practice test and a question, find the best fitting answer",
    "keywords": ["logical reasoning", "reading comprehension", "multiple choice"],
}


def _write_tasks(root: Path) -> None:
    tasks = root / "bigbench-1.0.0" / "benchmark_tasks"
    files = {
        "intersect_geometry/task.json": _GEOMETRY_TASK,
        "intersect_geometry/shapes_2/task.json": {**_GEOMETRY_TASK, "name": "shapes_2", "examples": [_GEOMETRY_19802]},
        f"{GRE}/task.json": {**_GRE_TASK, "examples": [_GRE_4]},
    }
    for name, content in files.items():
        (tasks / name).parent.mkdir(parents=True, exist_ok=True)
        (tasks / name).write_text(json.dumps(content), encoding="utf-8")


def _clear_task_caches() -> None:
    bigbench._task_json.cache_clear()
    bigbench.bbsub_index.cache_clear()


@pytest.fixture(params=["cache", "written"], scope="module")
def bbsub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[Example]:
    """BB-sub examples of the two tasks, from the cached BIG-bench files or from the quoted items."""
    if request.param == "cache":
        if not (cache_dir() / "bigbench-1.0.0" / "benchmark_tasks" / "intersect_geometry").is_dir():
            pytest.skip("BIG-bench task files are not in the cache (a run that loads BB-sub fetches them)")
        return bigbench.load_bbsub([GEOMETRY, GRE], max_per_task=40)
    root = tmp_path_factory.mktemp("cache")
    _write_tasks(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COTDISTILL_CACHE", str(root))
        _clear_task_caches()  # both are memoised per process: read the written files, then forget them
        try:
            return bigbench.load_bbsub([GEOMETRY, GRE])
        finally:
            _clear_task_caches()


def _label_index(label: str) -> int:
    return next(i for i in range(702) if option_label(i) == label)


def test_every_gold_is_a_label_the_question_shows_and_the_grader_reads(bbsub: list[Example]) -> None:
    for e in bbsub:
        for i, text in enumerate(e.choices):
            assert f"\n{option_label(i)} {text}" in e.question, (e.id, i)
        for gold in (e.answer, *e.alternatives):
            assert normalize_answer(gold, e) == gold, (e.id, gold)
            assert grade(f"So the answer is {gold}.", e).strict_correct, (e.id, gold)
            assert is_correct(e.choices[_label_index(gold)], e)  # the right option's text is right too


def test_41_options_are_labelled_a_to_ao_and_no_gold_reads_as_another_option(bbsub: list[Example]) -> None:
    geometry = [e for e in bbsub if e.task == GEOMETRY]
    assert geometry and all(len(e.choices) == 41 for e in geometry)
    for e in geometry:
        assert e.question.rstrip().endswith(f"(AO) {e.choices[-1]}")
        wrong = [option_label(i) for i, text in enumerate(e.choices) if text != e.choices[_label_index(e.answer)]]
        assert not any(is_correct(label, e) for label in wrong), e.id


def test_every_option_with_full_marks_is_a_gold(bbsub: list[Example]) -> None:
    gre = next(e for e in bbsub if e.task == GRE and "the passage imply regarding birds?" in e.question)
    right = {"They possess certain traits that are not common to all ectotherms.",
             "Over time they might have undergone a change in how they regulate body temperature."}
    golds = {gre.choices[_label_index(g)] for g in (gre.answer, *gre.alternatives)}
    assert golds == right
    wrong = next(i for i, text in enumerate(gre.choices) if text not in right)
    assert not grade(f"So the answer is {option_label(wrong)}.", gre).strict_correct
    single = [e for e in bbsub if e.task == GEOMETRY]
    assert all(e.alternatives == [] for e in single)
