import json

import pytest

from cotdistill.config import DataConfig, EvalConfig
from cotdistill.data import load_examples
from cotdistill.evaluate import PARTIAL, compute_metrics, evaluate, majority_vote
from cotdistill.generation import generate_texts


def test_majority_vote_ignores_missing_answers_and_breaks_ties_by_first_seen():
    assert majority_vote([None, "(B)", "(A)", "(A)", None]) == "(A)"
    assert majority_vote(["(B)", "(A)"]) == "(B)"
    assert majority_vote([None, None]) is None


def test_metrics_are_micro_averaged_per_task_and_benchmark():
    rows = [
        {"benchmark": "bbh", "task": "a", "strict_correct": True, "flexible_correct": True, "finish_reason": "stop"},
        {"benchmark": "bbh", "task": "a", "strict_correct": False, "flexible_correct": True, "finish_reason": "stop"},
        {"benchmark": "bbh", "task": "b", "strict_correct": False, "flexible_correct": False, "finish_reason": "length"},
    ]
    m = compute_metrics(rows)
    assert m["tasks"]["bbh/a"] == {"n": 2, "strict": 0.5, "flexible": 1.0, "truncated": 0}
    assert m["benchmarks"]["bbh"]["strict"] == pytest.approx(1 / 3)
    assert m["benchmarks"]["bbh"]["flexible"] == pytest.approx(2 / 3)
    assert m["benchmarks"]["bbh"]["truncated"] == 1


@pytest.fixture(scope="module")
def sample():
    return load_examples(DataConfig(source="bbh", subtasks=["navigate", "date_understanding"], limit_per_task=3))


@pytest.mark.slow
def test_batched_greedy_generation_matches_one_at_a_time(smollm2, sample):
    model, tokenizer = smollm2
    prompts = [f"Q: {e.question}\nA:" for e in sample[:4]]
    batched = generate_texts(model, tokenizer, prompts, max_new_tokens=24, batch_size=4)
    single = [generate_texts(model, tokenizer, [p], max_new_tokens=24, batch_size=1)[0] for p in prompts]
    assert [b[0].text for b in batched] == [s[0].text for s in single]
    assert all(g[0].new_tokens <= 24 for g in batched)


@pytest.mark.slow
def test_evaluation_writes_predictions_and_metrics_and_resumes(smollm2, sample, tmp_path):
    model, tokenizer = smollm2
    cfg = EvalConfig(batch_size=4, max_new_tokens=32)
    # An interrupted run left one finished prediction in the journal: it must be kept, not regenerated.
    planted = {
        "id": sample[0].id, "task": sample[0].task, "benchmark": "bbh", "gold": sample[0].answer,
        "output": "planted", "finish_reason": "stop", "strict": sample[0].answer, "flexible": sample[0].answer,
        "strict_correct": True, "flexible_correct": True,
    }
    (tmp_path / PARTIAL).write_text(json.dumps(planted) + "\n")
    metrics = evaluate(model, tokenizer, sample, cfg, tmp_path)
    predictions = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert [p["id"] for p in predictions] == [e.id for e in sample]
    assert predictions[0]["output"] == "planted"
    assert all(p["output"] != "planted" for p in predictions[1:])
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert set(metrics["tasks"]) == {"bbh/navigate", "bbh/date_understanding"}
    assert not (tmp_path / PARTIAL).exists()


@pytest.mark.slow
def test_self_consistency_votes_over_k_samples(smollm2, sample, tmp_path):
    model, tokenizer = smollm2
    cfg = EvalConfig(batch_size=6, max_new_tokens=24, self_consistency=3, temperature=1.0)
    evaluate(model, tokenizer, sample[:2], cfg, tmp_path)
    for p in map(json.loads, (tmp_path / "predictions.jsonl").read_text().splitlines()):
        assert len(p["samples"]) == 3
        assert p["flexible"] == majority_vote([s["flexible"] for s in p["samples"]])


def test_metrics_give_each_benchmark_a_row_and_their_unweighted_mean():
    from cotdistill.evaluate import metrics_table

    rows = [{"benchmark": "agieval", "task": "lsat-ar", "strict_correct": i < 1, "flexible_correct": i < 1,
             "finish_reason": "stop"} for i in range(4)]
    rows += [{"benchmark": "arc-e", "task": "ARC-Easy", "strict_correct": True, "flexible_correct": True,
              "finish_reason": "stop"}]
    m = compute_metrics(rows)
    assert m["benchmark_mean"]["strict"] == pytest.approx((0.25 + 1.0) / 2)  # not the pooled 2/5
    table = metrics_table(m)
    assert "| **AGIEval (all)** | 4 | **25.0** |" in table and "| **ARC-E (all)** | 1 | **100.0** |" in table
    assert "| **mean of the 2 benchmarks** | – | **62.5** | **62.5** |" in table
    assert "benchmark_mean" not in compute_metrics(rows[:4])


@pytest.mark.slow
def test_a_sequence_stops_after_stating_its_answer_and_the_batch_shows_token_progress(smollm2, capsys):
    model, tokenizer = smollm2
    # a pattern the model continues: one answer sentence per line, then the next question
    shots = "".join(f"Q: Pick shelf {i}.\nA: Shelf {i} is on the left. So the answer is ({'ABC'[i % 3]}).\n"
                    for i in range(4))
    prompts = [shots + "Q: Pick shelf 4.\nA:", shots + "Q: Pick shelf 5.\nA:"]
    full = generate_texts(model, tokenizer, prompts, max_new_tokens=40, batch_size=2)
    assert all("the answer is" in g[0].text and g[0].new_tokens == 40 for g in full)  # it runs on past its answer
    capsys.readouterr()
    stopped = generate_texts(model, tokenizer, prompts, max_new_tokens=40, batch_size=2, stop_after_answer=True,
                             progress=True)
    for long, short in zip(full, stopped):
        assert short[0].new_tokens < 40 and short[0].finish_reason == "stop"
        assert short[0].text.endswith(").") and long[0].text.startswith(short[0].text)
    err = capsys.readouterr().err
    assert "batch 1/1" in err and "answered=2/2" in err


@pytest.mark.parametrize("text, kept", [
    ("Left. So the answer is (B). Next", "Left. So the answer is (B)."),
    ("So the answer is (B).", None),  # the sentence may still go on ("(B).5" cannot, but "20." can)
    ("The answer is 20.5 apples.\n", "The answer is 20.5 apples."),
    ("The answer is:\n(B)\nQ:", "The answer is:\n(B)"),
    ("Is the answer is not (A)? Hm", None),
    ("<think>the answer is (A). wait", None),
    ("<think>hm</think>So the answer is (C). ok", "<think>hm</think>So the answer is (C)."),
])
def test_generation_stops_only_once_the_answer_sentence_is_complete(text, kept):
    from cotdistill.grading import answer_sentence_end

    end = answer_sentence_end(text)
    assert (None if end is None else text[:end]) == kept
