"""Lab students: a deterministic fitted tokenizer, CPU-sized presets, and a short run that learns."""

from __future__ import annotations

import pytest

from cotdistill.lab import generate_examples
from cotdistill.lab.demo_train import demo_settings, run
from cotdistill.lab.students import PRESETS, build_student, train_tokenizer
from cotdistill.lab.teacher import ScriptedTeacher
from cotdistill.methods import REGISTRY, MethodInputs


def _lab_texts(family: str, n: int, **knobs: int) -> tuple[list, list]:
    examples = generate_examples(family, n, seed=0, difficulty=knobs or None)
    cots = [r[0] for r in ScriptedTeacher().solve(examples)]
    return examples, cots


def test_tokenizer_is_deterministic_and_lossless(tmp_path) -> None:
    examples, cots = _lab_texts("multistep_arithmetic_two", 300)
    texts = [e.question for e in examples] + [c.text for c in cots]
    first, second = train_tokenizer(texts, 1024), train_tokenizer(texts, 1024)
    assert first.get_vocab() == second.get_vocab()
    sample = cots[0].text
    assert first.decode(first(sample).input_ids) == sample
    assert all(len(t) == 1 for t in first.tokenize("12345 -678") if t.strip("Ġ").isdigit())  # digit by digit
    first.save_pretrained(tmp_path)  # a transformers fast tokenizer, loadable as such
    from transformers import AutoTokenizer
    assert AutoTokenizer.from_pretrained(tmp_path)(sample).input_ids == first(sample).input_ids


def test_presets() -> None:
    assert {"lab-tiny", "lab-small", "lab-base", "smollm2-135m"} <= set(PRESETS)
    examples, cots = _lab_texts("web_of_lies", 200)
    model, tokenizer = build_student("lab-small", [c.text for c in cots])
    params = sum(p.numel() for p in model.parameters())
    assert 2e6 < params < 6e6
    # Std-CoT compiles for the lab's tokenizer: the student sees the question, learns the CoT (exactly, then EOS)
    stages = REGISTRY["std_cot"].build(MethodInputs(examples=examples, rationales=cots, tokenizer=tokenizer), {})
    first = stages[0].sequences[0]
    assert examples[0].question in tokenizer.decode(first.prompt_ids)
    assert first.target_ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(first.target_ids, skip_special_tokens=True).strip() == cots[0].text


@pytest.mark.slow
def test_a_tiny_student_learns_web_of_lies_on_cpu_through_the_weighted_trainer() -> None:
    # a step count, not a time budget: a busy machine makes the test slower, never weaker
    settings = demo_settings(max_steps=200, batch_size=32, learning_rate=3e-3, seed=0, log_every=20)
    result = run("web_of_lies", "lab-tiny", {"people": 3}, train_n=2000, test_n=100, settings=settings,
                 minutes=15, eval_every=10_000, probe_n=20)
    losses = [p.loss for p in result.curve if p.loss is not None]
    print(f"loss curve {[round(x, 3) for x in losses]}; accuracy {result.accuracy:.2f} vs chance "
          f"{result.chance:.2f}; {result.seconds:.0f}s")
    assert result.curve[0].step == 0 and result.curve[0].accuracy == 0.0  # untrained: no answer sentence
    assert result.steps == 200
    assert losses[-1] < 0.25 * losses[0]
    assert result.accuracy >= result.chance + 0.25, result.outputs[:3]
    assert "Therefore, the answer is" in result.outputs[0]


def test_the_demo_stops_training_when_its_time_budget_is_spent() -> None:
    settings = demo_settings(max_steps=500, batch_size=8, learning_rate=3e-3, seed=0, log_every=25)
    result = run("web_of_lies", "lab-tiny", {"people": 3}, train_n=32, test_n=4, settings=settings, minutes=0,
                 probe_n=0)
    assert result.steps == 1  # a zero budget is spent by the first step, which the Trainer finishes
    assert [p.step for p in result.curve] == [0, 1] and result.curve[-1].loss > 0  # the last loss is logged
