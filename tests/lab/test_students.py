"""Lab students: a deterministic fitted tokenizer, CPU-sized presets, and a short run that learns."""

from __future__ import annotations

import torch

from cotdistill.lab import generate_examples
from cotdistill.lab.students import PRESETS, build_student, train_tokenizer
from cotdistill.lab.teacher import ScriptedTeacher
from cotdistill.lab.train import IGNORE, TrainConfig, chance_level, encode, evaluate, train


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
    ids, labels = encode(tokenizer, examples[0], cots[0].text)
    assert labels[0] == IGNORE and labels[-1] == tokenizer.eos_token_id and len(ids) == len(labels)
    # the student sees the question but learns only the CoT
    assert tokenizer.decode([t for t in labels if t != IGNORE], skip_special_tokens=True).strip() == cots[0].text


def test_a_tiny_student_learns_web_of_lies_on_cpu() -> None:
    torch.set_num_threads(2)
    examples, cots = _lab_texts("web_of_lies", 2000, people=3)
    held_out = generate_examples("web_of_lies", 100, seed=1, difficulty={"people": 3}, split="test",
                                 exclude=[e.question for e in examples])
    model, tokenizer = build_student("lab-tiny", [e.question for e in examples] + [c.text for c in cots])
    before, _ = evaluate(model, tokenizer, held_out[:20], max_new_tokens=8)
    # a step count, not a time budget: a busy machine makes the test slower, never weaker (about 40 s idle)
    cfg = TrainConfig(max_steps=200, time_budget_s=900, batch_size=32, learning_rate=3e-3, eval_every=10_000,
                      log_every=20)
    result = train(model, tokenizer, list(zip(examples, cots)), cfg)
    accuracy, outputs = evaluate(model, tokenizer, held_out, max_new_tokens=80)
    losses = [p.loss for p in result.curve]
    print(f"loss curve {[round(x, 3) for x in losses]}; accuracy {accuracy:.2f} vs chance "
          f"{chance_level(held_out):.2f}; {result.seconds:.0f}s")
    assert before == 0.0  # an untrained student does not produce the answer sentence
    assert losses[-1] < 0.25 * losses[0]
    assert accuracy >= chance_level(held_out) + 0.25, outputs[:3]
    assert "Therefore, the answer is" in outputs[0]
