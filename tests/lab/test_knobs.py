"""The lab's knobs for studies: question-dependent mistakes, the first wrong step, difficulty mixes, OOD levels,
the validation split, and the documentation generated from the families."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from cotdistill.config import LabData, LabTeacher
from cotdistill.errors import CotdistillError
from cotdistill.lab import FAMILIES, generate_examples
from cotdistill.lab.cli import _dual_pairs
from cotdistill.lab.core import Style, render
from cotdistill.lab.families import mistake_type_table
from cotdistill.lab.generate import evaluation_splits, lab_examples, share_out
from cotdistill.lab.teacher import ScriptedTeacher

DOCS = Path(__file__).parents[2] / "docs" / "lab.md"


def _wrong_share(teacher: ScriptedTeacher, family: str, n: int, seed: int, **knobs: int) -> float:
    examples = generate_examples(family, n, seed, knobs)
    return sum(not r[0].correct for r in teacher.solve(examples)) / n


# ---- question-dependent mistakes -----------------------------------------------------------------------------


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_step_loads_give_one_nonnegative_load_per_step_and_some_to_the_mistake_sites(family: str) -> None:
    fam = FAMILIES[family]
    for example in generate_examples(family, 20, seed=5):
        problem = fam.parse(example)
        loads = fam.step_loads(problem)
        assert len(loads) == len(fam.work(problem, Style(0)).steps)
        assert all(load >= 0 for load in loads)
        sites = {s for t in fam.mistake_types for s in fam.fault_steps(problem, t)}
        assert sites and all(loads[s] > 0 for s in sites)


def test_mistake_rate_at_the_hardest_level_exceeds_the_easiest() -> None:
    teacher = ScriptedTeacher(slip_rate=0.05, seed=1)
    easy = _wrong_share(teacher, "web_of_lies", 400, 0, people=3)
    hard = _wrong_share(teacher, "web_of_lies", 400, 0, people=8)
    # expected about 0.19 and 0.51 (1 - 0.95 ** load, mean loads 4 and 14); binomial sd about 0.025
    assert hard > easy + 0.2, (easy, hard)


def test_within_one_level_more_negations_mean_more_mistakes() -> None:
    fam = FAMILIES["web_of_lies"]
    teacher = ScriptedTeacher(slip_rate=0.1, seed=2)
    examples = generate_examples("web_of_lies", 1000, seed=3, difficulty={"people": 5})
    light, heavy = [], []  # few negations (the load is 4 without any), many
    for example, samples in zip(examples, teacher.solve(examples, n=4)):
        load = sum(fam.step_loads(fam.parse(example)))
        if load <= 6 or load >= 10:
            (light if load <= 6 else heavy).extend(not r.correct for r in samples)
    assert len(light) > 300 and len(heavy) > 300
    # expected about 0.44 and 0.67 (1 - 0.9 ** load); each share has a binomial sd under 0.03
    assert sum(heavy) / len(heavy) > sum(light) / len(light) + 0.1


def test_without_slips_the_chance_is_the_same_for_every_question() -> None:
    teacher = ScriptedTeacher(mistake_rate=0.3)
    fam = FAMILIES["web_of_lies"]
    chances = {teacher.mistake_chance(fam, fam.parse(e)) for e in generate_examples("web_of_lies", 50, 0)}
    assert chances == {0.3}
    # the flat rate is the floor of the question-dependent chance
    sloped = ScriptedTeacher(mistake_rate=0.3, slip_rate=0.05)
    assert all(sloped.mistake_chance(fam, fam.parse(e)) > 0.3 for e in generate_examples("web_of_lies", 50, 0))


def test_slips_land_on_heavy_steps_more_often_than_on_light_ones() -> None:
    fam = FAMILIES["web_of_lies"]
    teacher = ScriptedTeacher(mistake_rate=1.0, slip_rate=0.01, seed=4)
    examples = generate_examples("web_of_lies", 600, seed=6)
    landed, offered = Counter(), Counter()
    for example in examples:
        problem = fam.parse(example)
        loads = fam.step_loads(problem)
        offered.update(loads[s] for s in fam.fault_steps(problem, "logical"))
        landed[loads[teacher.trace(example, 0).fault.step]] += 1
    # odds proportional to load: a site of load 3 (a double negation) is picked 3x as often as one of load 1;
    # with about a quarter of the sites at each of loads 1 and 3, that is 1.5x and 0.5x their share of the sites
    share = {load: landed[load] / sum(landed.values()) for load in landed}
    offer = {load: offered[load] / sum(offered.values()) for load in offered}
    assert share[3.0] > 1.3 * offer[3.0] and share[1.0] < 0.7 * offer[1.0], (share, offer)


def test_slip_rate_is_validated_and_read_from_the_study_config() -> None:
    with pytest.raises(CotdistillError, match="slip_rate"):
        ScriptedTeacher(slip_rate=1.0)
    teacher = ScriptedTeacher.from_config(LabTeacher(mistake_rate=0.1, slip_rate=0.02, spurious_rate=0.05, seed=3))
    assert (teacher.mistake_rate, teacher.slip_rate, teacher.spurious_rate, teacher.seed) == (0.1, 0.02, 0.05, 3)


# ---- the first wrong step --------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_first_wrong_step_is_the_mistake_site_and_precedes_the_later_differing_steps(family: str) -> None:
    examples = generate_examples(family, 40, seed=9)
    teacher = ScriptedTeacher(mistake_rate=0.5, spurious_rate=0.2, slip_rate=0.02, seed=5)
    rationales = [r[0] for r in teacher.solve(examples)]
    by_id = {e.id: e for e in examples}
    right = [(by_id[r.example_id], r) for r in rationales if r.error_type is None]
    flawed = [r for r in rationales if r.error_type is not None] + teacher.corrupt(right)
    assert any(r.error_type == "spurious" for r in flawed) and any(not r.correct for r in flawed)
    for r in flawed:
        start, end = r.first_wrong_step
        assert 0 <= start < end <= len(r.text)
        # it opens the first key span: nothing before it differs, whatever follows from it comes later
        first_start, first_end = r.key_spans[0]
        assert start == first_start and end <= first_end
        assert all(a >= end for a, _ in r.key_spans[1:])
        # and it is the step the scripted fault was put on, against the clean path's same step
        trace = teacher.trace(by_id[r.example_id], r.sample_index)
        clean = render(trace.clean, trace.style)
        assert r.text[:start] == clean.text[:start] and r.text[start:end] != clean.text[start:end]
        if r.origin == "teacher":
            assert (start, end) == render(trace.written, trace.style).step_spans[trace.fault.step]
    assert all(r.first_wrong_step is None for _, r in right)


def test_pairs_carry_the_first_wrong_step_on_their_wrong_side_only() -> None:
    examples = generate_examples("web_of_lies", 30, seed=2)
    teacher = ScriptedTeacher(mistake_rate=0.5, seed=1)
    pairs = _dual_pairs(teacher, examples, [r[0] for r in teacher.solve(examples)])
    assert {p.kind for p in pairs} == {"positive", "negative"}
    assert all(p.rejected.first_wrong_step and p.chosen.first_wrong_step is None for p in pairs)


# ---- study data: mixes, validation, OOD levels ---------------------------------------------------------------


def test_share_out_is_exact_and_follows_the_weights() -> None:
    assert share_out(10, [2, 1, 1]) == [5, 3, 2]
    assert share_out(7, [1, 1, 1]) == [3, 2, 2]
    assert all(sum(share_out(n, [0.3, 1.7, 2.0])) == n for n in range(40))


def _study_data(family: str, levels: list[dict], ood: list[dict]) -> LabData:
    return LabData(families=[family], train_n=60, test_n=30, validation_n=20, ood_test_n=40,
                   difficulty={family: levels}, ood_difficulty={family: ood})


def test_validation_questions_are_disjoint_from_train_test_and_ood() -> None:
    data = _study_data("web_of_lies", [{"people": 3, "weight": 2}, {"people": 4}], [{"people": 6}, {"people": 7}])
    examples = lab_examples(data)
    by_split: dict[str, set[str]] = {}
    for e in examples:
        by_split.setdefault(e.split, set()).add(e.question)
    assert {k: len(v) for k, v in by_split.items()} == {"train": 60, "test": 30, "validation": 20,
                                                         "ood-1": 40, "ood-2": 40}
    for split in ("train", "test", "ood-1", "ood-2"):
        assert not by_split["validation"] & by_split[split]
    assert len({e.question for e in examples}) == len({e.id for e in examples}) == len(examples)


def test_the_ind_mix_gives_each_level_its_weighted_share_in_every_ind_split() -> None:
    examples = lab_examples(_study_data("web_of_lies", [{"people": 3, "weight": 2}, {"people": 4}], [{"people": 6}]))
    people = Counter((e.split, e.question.count(" says ") + 1) for e in examples)
    assert (people["train", 3], people["train", 4]) == (40, 20)
    assert (people["test", 3], people["test", 4]) == (20, 10)
    assert (people["validation", 3], people["validation", 4]) == (13, 7)  # 13.33 and 6.67: largest remainder


def test_adding_a_validation_split_leaves_the_other_splits_as_they_were() -> None:
    plain = LabData(families=["navigate"], train_n=40, test_n=10)
    with_validation = lab_examples(plain.model_copy(update={"validation_n": 15}))
    assert [e for e in with_validation if e.split != "validation"] == lab_examples(plain)


@pytest.mark.parametrize("family,levels,ood", [
    ("web_of_lies", [{"people": 3}, {"people": 4}, {"people": 5}], [{"people": 6}, {"people": 7}, {"people": 8}]),
    ("multistep_arithmetic_two", [{"operands": 2}, {"operands": 3}], [{"operands": 4}, {"operands": 5}]),
    ("object_counting", [{"items": 4}, {"items": 5}], [{"items": 8}, {"items": 10}]),
    ("tracking_shuffled_objects", [{"objects": 3, "swaps": 3}], [{"objects": 5, "swaps": 5},
                                                                 {"objects": 7, "swaps": 7}]),
])
def test_ood_levels_each_have_their_test_n_and_get_harder_level_by_level(family, levels, ood) -> None:
    data = _study_data(family, levels, ood)
    examples = lab_examples(data)
    teacher = ScriptedTeacher()
    names = ["test"] + [f"ood-{i}" for i in range(1, len(ood) + 1)]
    assert list(evaluation_splits(data).values()) == names
    lengths = []
    for name in names:
        split = [e for e in examples if e.split == name]
        assert len(split) == (30 if name == "test" else 40)
        lengths.append(sum(len(r[0].text) for r in teacher.solve(split)) / len(split))
    assert all(a < b for a, b in zip(lengths, lengths[1:])), lengths  # longer worked solutions, level by level


def test_a_single_ood_setting_keeps_the_split_ood_and_the_default_is_the_hard_one() -> None:
    data = LabData(families=["web_of_lies"], train_n=10, test_n=5)
    examples = lab_examples(data)
    assert evaluation_splits(data) == {"IND": "test", "OOD": "ood"}
    ood = [e for e in examples if e.split == "ood"]
    assert len(ood) == 5 and all(e.question.count(" says ") + 1 == 8 for e in ood)
    assert evaluation_splits(data.model_copy(update={"ood": False})) == {"IND": "test"}


def test_a_bad_mix_is_refused_naming_the_family_and_entry() -> None:
    with pytest.raises(CotdistillError, match=r"lab.difficulty.web_of_lies\[1\].*weight must be positive"):
        lab_examples(LabData(families=["web_of_lies"], difficulty={"web_of_lies": [{"people": 3}, {"people": 4,
                                                                                                  "weight": 0}]}))
    with pytest.raises(CotdistillError, match=r"lab.difficulty.web_of_lies\[0\].*whole numbers.*people"):
        lab_examples(LabData(families=["web_of_lies"], difficulty={"web_of_lies": [{"people": 3.5}]}))
    with pytest.raises(CotdistillError, match=r"in the mix twice"):
        lab_examples(LabData(families=["web_of_lies"], difficulty={"web_of_lies": [{"people": 5}, {}]}))
    with pytest.raises(CotdistillError, match="unknown difficulty knob"):
        lab_examples(LabData(families=["web_of_lies"], ood_difficulty={"web_of_lies": [{"persons": 6}]}))


@pytest.mark.parametrize("family,harder", [("multistep_arithmetic_two", {"operands": 5}),
                                           ("object_counting", {"items": 8}),
                                           ("tracking_shuffled_objects", {"swaps": 5})])
def test_computed_value_families_take_every_knob_at_once(family: str, harder: dict[str, int]) -> None:
    fam = FAMILIES[family]
    data = LabData(families=[family], train_n=80, test_n=10, validation_n=10,
                   difficulty={family: [dict(fam.default_difficulty), {**harder, "weight": 0.5}]},
                   ood_difficulty={family: [dict(fam.hard_difficulty)]})
    examples = lab_examples(data)
    train = [e for e in examples if e.split == "train"]
    teacher = ScriptedTeacher.from_config(LabTeacher(mistake_rate=0.1, slip_rate=0.03, spurious_rate=0.15,
                                                     mistake_types={"calculation": 1, "knowledge": 1}))
    rationales = [r for rs in teacher.solve(train, n=2) for r in rs]
    assert Counter(r.example_id for r in rationales) == {e.id: 2 for e in train}  # K samples per question
    kinds = Counter(r.error_type for r in rationales)
    assert kinds[None] and kinds["spurious"] and set(kinds) - {None, "spurious"} <= set(fam.mistake_types)
    pairs = _dual_pairs(teacher, train, rationales)
    assert {p.kind for p in pairs} == {"positive", "negative"}
    assert all(p.rejected.first_wrong_step for p in pairs)
    assert {e.split for e in examples} == {"train", "test", "validation", "ood-1"}


# ---- documentation ---------------------------------------------------------------------------------------------


def test_the_mistake_type_table_in_the_docs_is_the_one_the_code_generates() -> None:
    assert mistake_type_table() in DOCS.read_text(encoding="utf-8")


def test_the_study_example_in_the_docs_is_a_valid_lab_section() -> None:
    block = re.search(r"```yaml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert block, "docs/lab.md has no yaml example"
    study = yaml.safe_load(block.group(1))["study"]
    data, teacher = LabData(**study["lab"]), LabTeacher(**study["teacher"])
    assert data.validation_n > 0 and teacher.slip_rate > 0
    assert len(evaluation_splits(data)) > 2  # IND and several OOD levels
