"""CoPeD: the CAW weights' direction, normalisation and temperature, and the correctness-aware format (status
tags, revision targets, answer segments that cover exactly the closing sentence)."""

from __future__ import annotations

import math

import pytest
import torch

from cotdistill.errors import CotdistillError
from cotdistill.grading import final_answer_sentence
from cotdistill.lab import generate_examples
from cotdistill.lab.students import train_tokenizer
from cotdistill.lab.teacher import ScriptedTeacher
from cotdistill.methods import REGISTRY, MethodInputs
from cotdistill.methods.coped import (
    CopedConfig, answer_segments, coped_instance_weights, coped_sequences, instance_weighting_fn, pick_revision,
)
from cotdistill.methods.encode import ANSWER, RATIONALE, encode
from cotdistill.records import Rationale

# ---- weights -------------------------------------------------------------------------------------------------

LOSSES = torch.tensor([[1.0, 0.2], [2.5, 0.5], [0.3, 0.1], [1.0, 1.0]])  # combined: 1.2, 3.0, 0.4, 2.0


def test_direction_orders_weights_by_combined_loss() -> None:
    combined = LOSSES.sum(1)
    up = coped_instance_weights(LOSSES, direction=1.0)
    down = coped_instance_weights(LOSSES, direction=-1.0)
    assert torch.equal(torch.argsort(up), torch.argsort(combined))  # +1: the higher the loss, the higher the weight
    assert torch.equal(torch.argsort(down), torch.argsort(-combined))  # -1: the lower the loss, the higher
    assert torch.argmax(down).item() == 2 and torch.argmax(up).item() == 1


def test_default_emphasises_low_loss_with_mean_one() -> None:
    w = coped_instance_weights(torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]]))  # softmax(0, -ln 3) * 2
    assert w.tolist() == pytest.approx([1.5, 0.5])


def test_normalisations() -> None:
    mean = coped_instance_weights(LOSSES, normalisation="mean")
    total = coped_instance_weights(LOSSES, normalisation="sum")
    raw = coped_instance_weights(LOSSES, temperature=2.0, normalisation="none")
    assert mean.mean().item() == pytest.approx(1.0) and total.sum().item() == pytest.approx(1.0)
    assert torch.allclose(mean, total * len(LOSSES))
    assert torch.allclose(raw, torch.exp(-LOSSES.sum(1) / 2.0))  # exp(direction * s / T), unnormalised
    clamped = coped_instance_weights(LOSSES, normalisation="mean", clamp_min=0.5, clamp_max=1.5)
    assert clamped.min().item() >= 0.5 and clamped.max().item() <= 1.5


def test_temperature_to_infinity_gives_uniform_and_to_zero_gives_one_hot() -> None:
    assert coped_instance_weights(LOSSES, temperature=float("inf")).tolist() == [1.0] * 4
    assert coped_instance_weights(LOSSES, temperature=1e6).tolist() == pytest.approx([1.0] * 4, abs=1e-5)
    assert coped_instance_weights(LOSSES, temperature=1e-3, normalisation="sum").tolist() == \
        pytest.approx([0, 0, 1, 0], abs=1e-6)


def test_weights_carry_no_gradient_and_reject_bad_input() -> None:
    losses = LOSSES.clone().requires_grad_(True)
    assert not coped_instance_weights(losses).requires_grad
    with pytest.raises(ValueError, match="shape"):
        coped_instance_weights(torch.ones(4))
    with pytest.raises(ValueError, match="temperature"):
        coped_instance_weights(LOSSES, temperature=0.0)


def test_instance_weighting_fn_from_params() -> None:
    fn = instance_weighting_fn({"direction": 1, "normalisation": "sum", "temperature": 0.5})
    one_task = torch.zeros(len(LOSSES), dtype=torch.long)
    assert torch.allclose(fn(LOSSES, one_task), torch.softmax(LOSSES.sum(1) / 0.5, 0))
    assert instance_weighting_fn()(LOSSES, one_task).mean().item() == pytest.approx(1.0)
    with pytest.raises(CotdistillError, match="direction"):
        instance_weighting_fn({"direction": 2})
    with pytest.raises(CotdistillError, match="temprature"):
        instance_weighting_fn({"temprature": 1.0})


# ---- formatting ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab():
    """Lab questions, teacher CoTs (some wrong, one rectified) and CoTs from a weaker 'student'."""
    examples = (generate_examples("web_of_lies", 4, seed=5, difficulty={"people": 3})
                + generate_examples("multistep_arithmetic_two", 4, seed=5))
    teacher = ScriptedTeacher(mistake_rate=0.3, seed=1)
    cots = [r for per in teacher.solve(examples, n=2) for r in per]
    by_id = {e.id: e for e in examples}
    wrong = [r for r in cots if r.correct is False]
    assert wrong, "the fixture needs a wrong teacher CoT"
    rectified = teacher.rectify([(by_id[wrong[0].example_id], wrong[0])])
    student = [r.model_copy(update={"id": r.id.replace("scripted-lab", "student"), "origin": "student"})
               for per in ScriptedTeacher(mistake_rate=0.6, seed=7).solve(examples, n=1) for r in per]
    tokenizer = train_tokenizer([e.question for e in examples] + [r.text for r in cots + student], 500)
    return examples, [*cots, *rectified], student, tokenizer


def _split_by_segment(tokenizer, seq) -> tuple[str, str]:
    body = [t for t, s in zip(seq.target_ids, seq.target_segments) if s == RATIONALE]
    answer = [t for t, s in zip(seq.target_ids, seq.target_segments) if s == ANSWER]
    assert answer[-1] == tokenizer.eos_token_id  # the EOS that ends the answer belongs to it
    return tokenizer.decode(body), tokenizer.decode(answer[:-1])


def test_sequences_follow_the_correctness_aware_format(lab) -> None:
    examples, teacher, student, tokenizer = lab
    by_id = {e.id: e for e in examples}
    config = CopedConfig()
    sequences, counts = coped_sequences(examples, teacher, student, tokenizer, config)
    seqs = {s.id: s for s in sequences}
    rationales = {r.id: r for r in [*teacher, *student]}
    assert counts["generation"] == sum(r.correct is True for r in teacher)
    own = [r for r in teacher if r.origin == "teacher"]  # reviewed: what the teacher wrote, not its rectification
    assert counts["status_correct"] + counts["status_incorrect"] + counts["no_revision"] == len(own) + len(student)
    assert counts["status_incorrect"] > 0 and any(r.correct is False for r in student)
    for sid, seq in seqs.items():
        kind, rid = sid.split("/", 2)[1:]
        r = rationales[rid]
        example = by_id[r.example_id]
        prompt = tokenizer.decode(seq.prompt_ids)
        target = tokenizer.decode(seq.target_ids, skip_special_tokens=True).strip()
        body, answer = _split_by_segment(tokenizer, seq)
        if kind == "gen":
            assert r.correct and target == r.text and "[Rationale status" not in prompt
            assert answer.strip() == final_answer_sentence(example.answer)  # the segment is the sentence
            assert (body + answer).strip() == r.text
            continue
        tag = "[Rationale status: correct]" if r.correct else "[Rationale status: incorrect]"
        assert prompt.endswith("\n" + tag)
        shown = prompt[: -len(tag) - 1]
        assert "Therefore, the answer is" not in shown.split("A:", 1)[1]  # the rationale's own answer is cut
        if r.correct:
            assert target == final_answer_sentence(example.answer) and body == ""  # answer only: all segment 1
        else:
            revision = next(t for t in teacher if t.text == target)
            assert revision.correct and revision.example_id == r.example_id
            assert answer.strip() == final_answer_sentence(example.answer) and (body + answer).strip() == target


def test_a_wrong_rationale_is_revised_by_its_rectification_else_the_closest_correct_one(lab) -> None:
    examples, teacher, _, _ = lab
    rectified = next(r for r in teacher if r.origin == "rectified")
    wrong = next(r for r in teacher if r.id == rectified.parent)
    correct = [r for r in teacher if r.correct and r.example_id == wrong.example_id]
    assert pick_revision(wrong, correct) is rectified
    close = Rationale(id="c1", example_id="q", text="a b c d e f", correct=True)
    far = Rationale(id="c2", example_id="q", text="x y z w v u", correct=True)
    bad = Rationale(id="w", example_id="q", text="a b c d e g", correct=False)
    assert pick_revision(bad, [far, close]) is close
    assert pick_revision(bad, [far, close], revise_with="first") is far
    assert pick_revision(bad, []) is None
    corrupted = bad.model_copy(update={"parent": "c2"})  # corrupted from c2: c2 is its own counterpart
    assert pick_revision(corrupted, [close, far]) is far


def test_options_change_the_format(lab) -> None:
    examples, teacher, student, tokenizer = lab
    config = CopedConfig(generation_task=False, teacher_in_status_task=False, keep_rationale_answer=True,
                         correct_tag="[correct]", incorrect_tag="[incorrect]")
    sequences, counts = coped_sequences(examples, teacher, student, tokenizer, config)
    assert counts["generation"] == 0 and len(sequences) == len(student) - counts["no_revision"]
    first = tokenizer.decode(sequences[0].prompt_ids)
    assert first.endswith("[correct]") or first.endswith("[incorrect]")
    assert "Therefore, the answer is" in first  # the rationale is shown whole


def test_the_weighting_alone_ablation_drops_the_status_task_and_the_student_samples(lab) -> None:
    """CoPeD's two parts apart: status_task false leaves Std-CoT's generation sequences under CAW weights (and
    needs no student samples); an infinite temperature leaves the task setting with uniform weights."""
    examples, teacher, student, tokenizer = lab
    sequences, counts = coped_sequences(examples, teacher, student, tokenizer, CopedConfig(status_task=False))
    assert counts["generation"] == len(sequences) > 0 and {s.task for s in sequences} == {"generation"}
    assert REGISTRY["coped"].needs_for({"status_task": False}) == ("rationales",)
    inputs = MethodInputs(examples=examples, rationales=teacher, student_rationales=(), tokenizer=tokenizer)
    (stage,) = REGISTRY["coped"].build(inputs, {"status_task": False})
    assert stage.instance_weighting == "coped" and len(stage.sequences) == len(sequences)
    (uniform,) = REGISTRY["coped"].build(inputs, {"weighting": {"temperature": float("inf")}})
    weights = instance_weighting_fn(uniform.extra["coped"])(LOSSES, torch.zeros(len(LOSSES), dtype=torch.long))
    assert torch.allclose(weights, torch.ones_like(weights))


def test_segments_without_an_answer_sentence_are_all_rationale(lab) -> None:
    tokenizer = lab[3]
    target = "No closing sentence here."
    assert set(answer_segments(encode(tokenizer, "Q:", target), target)) == {RATIONALE}


def test_recipe_is_registered_and_sets_the_weighting(lab) -> None:
    examples, teacher, student, tokenizer = lab
    inputs = MethodInputs(examples=examples, rationales=teacher, student_rationales=student, tokenizer=tokenizer)
    (stage,) = REGISTRY["coped"].build(inputs, {"weighting": {"temperature": 2.0}})
    assert stage.instance_weighting == "coped" and stage.extra["coped"]["temperature"] == 2.0
    one_task = torch.zeros(len(LOSSES), dtype=torch.long)
    assert instance_weighting_fn(stage.extra["coped"])(LOSSES, one_task).mean().item() == pytest.approx(1.0)
    assert all(len(s.target_segments) == len(s.target_ids) for s in stage.sequences)
    assert "student_rationales" in REGISTRY["coped"].needs_for({})
    with pytest.raises(CotdistillError, match="tag"):
        REGISTRY["coped"].build(inputs, {"tag": "x"})


# ---- comparable instances ------------------------------------------------------------------------------------


def test_weights_compare_instances_of_one_task_only() -> None:
    """An answer-only instance (no rationale loss) is not compared with a question -> CoT instance: each task's
    weights are a softmax among its own instances, so every task keeps mean weight 1."""
    tasks = torch.tensor([0, 0, 1, 1])  # two generation instances (long CoTs), two answer-only ones
    losses = torch.tensor([[2.0, 0.5], [3.0, 0.5], [0.0, 0.2], [0.0, 0.4]])
    w = coped_instance_weights(losses, tasks=tasks)
    assert w[:2].mean().item() == pytest.approx(1.0) and w[2:].mean().item() == pytest.approx(1.0)
    assert w[0] > w[1] and w[2] > w[3]  # within a task the lower combined loss still weighs more
    assert torch.allclose(w[:2], coped_instance_weights(losses[:2]))
    whole_batch = coped_instance_weights(losses, tasks=tasks, compare="batch")  # the ablation: one softmax
    assert whole_batch[:2].mean().item() < 0.2


def test_in_training_every_task_keeps_mean_weight_one(lab) -> None:
    """Through the collator and the trainer's loss, a batch mixing CoPeD's three tasks gives each task mean
    weight 1 (it was 0.004-0.010 for generation at the lab's settings when the softmax spanned the batch)."""
    from transformers import LlamaConfig, LlamaForCausalLM, TrainingArguments

    from cotdistill.train.collate import PaddedCollator, sequence_features
    from cotdistill.train.trainer import WeightedTrainer

    examples, teacher, student, tokenizer = lab
    (stage,) = REGISTRY["coped"].build(MethodInputs(examples=examples, rationales=teacher,
                                                    student_rationales=student, tokenizer=tokenizer), {})
    tasks = [s.task for s in stage.sequences]
    assert set(tasks) == {"generation", "status_correct", "status_incorrect"}
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2))
    args = TrainingArguments(output_dir="/tmp/unused-coped-test", report_to=[], remove_unused_columns=False,
                             use_cpu=True)
    trainer = WeightedTrainer(model=model, args=args, instance_weighting_name="coped",
                              instance_weighting_params=stage.extra["coped"])
    with torch.no_grad():
        trainer.compute_loss(model, PaddedCollator()([sequence_features(s) for s in stage.sequences]))
    weights = trainer.last_instance_weights
    for task in set(tasks):
        mine = weights[torch.tensor([t == task for t in tasks])]
        assert mine.mean().item() == pytest.approx(1.0, abs=1e-5), task
        assert mine.std().item() > 0  # still reweighted within the task
