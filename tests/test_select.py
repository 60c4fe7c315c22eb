"""MoRSD selection: RD equals a hand-computed perplexity ratio, batching changes nothing, and every filter and
keep rule drops exactly what it should."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import LlamaForCausalLM

from cotdistill.errors import CotdistillError
from cotdistill.lab import generate_examples
from cotdistill.lab.students import SCRATCH_PRESETS, train_tokenizer
from cotdistill.lab.teacher import ScriptedTeacher
from cotdistill.methods.encode import encode
from cotdistill.prompting import plain_prompt
from cotdistill.records import Rationale
from cotdistill.select import (
    DifficultyScore, SelectionConfig, accuracy_filter, answer_target, diversity_filter, embedding_similarity,
    keep_by_difficulty, rationale_body, rationale_difficulty, select_rationales,
)
from cotdistill.similarity import jaccard, ngram_similarity, word_ngrams


@pytest.fixture(scope="module")
def lab():
    """Lab questions, three scripted CoTs each (some wrong), and a tiny random Llama with a sharp distribution."""
    torch.manual_seed(0)
    # web_of_lies answers are one token; arithmetic answers ("-20") are several, digit by digit
    examples = (generate_examples("web_of_lies", 3, seed=3, difficulty={"people": 3})
                + generate_examples("multistep_arithmetic_two", 3, seed=3))
    cots = ScriptedTeacher(mistake_rate=0.4, seed=1).solve(examples, n=3)
    rationales = [r for per in cots for r in per]
    tokenizer = train_tokenizer([e.question for e in examples] + [r.text for r in rationales], 400)
    config = SCRATCH_PRESETS["lab-tiny"].config(tokenizer)
    config.initializer_range = 0.3  # far from uniform, so the perplexities differ between contexts
    model = LlamaForCausalLM(config).eval()
    return examples, rationales, model, tokenizer


def _rid(eid: str, i: int, text: str, correct: bool | None = True) -> Rationale:
    return Rationale(id=f"{eid}#{i}", example_id=eid, text=text, correct=correct, sample_index=i)


@torch.no_grad()
def _hand_nll(model, ids: list[int], scored_positions: list[int]) -> float:
    """Mean NLL of the tokens at `scored_positions`, each from its own unpadded forward pass on the prefix."""
    total = 0.0
    for p in scored_positions:
        logits = model(input_ids=torch.tensor([ids[:p]])).logits[0, -1].double()
        total -= torch.log_softmax(logits, -1)[ids[p]].item()
    return total / len(scored_positions)


def _hand_rd(model, tokenizer, example, rationale, answer_text) -> float:
    nlls = []
    for body in (rationale_body(rationale.text), ""):
        target, (a, b) = answer_target(body, example.answer, answer_text)
        enc = encode(tokenizer, plain_prompt(example), target)
        ids = enc.prompt_ids + enc.target_ids
        scored = [len(enc.prompt_ids) + i for i, (s, e) in enumerate(enc.target_offsets) if s < b and a < e]
        nlls.append(_hand_nll(model, ids, scored))
    return math.exp(nlls[0] - nlls[1])  # = ppl(a | q, r) / ppl(a | q)


@pytest.mark.parametrize("answer_text", ["bare", "sentence"])
def test_rd_is_the_hand_computed_perplexity_ratio(lab, answer_text) -> None:
    examples, rationales, model, tokenizer = lab
    by_id = {e.id: e for e in examples}
    picked = [rationales[0], rationales[1], rationales[-1]]  # a web_of_lies and an arithmetic answer
    scores = rationale_difficulty(model, tokenizer, examples, picked, batch_size=3, answer_text=answer_text)
    for r, s in zip(picked, scores):
        expected = _hand_rd(model, tokenizer, by_id[r.example_id], r, answer_text)
        assert s.rationale_id == r.id
        assert s.rd == pytest.approx(expected, rel=1e-5, abs=1e-5)
    assert len({round(s.rd, 4) for s in scores}) > 1  # the check is not vacuous: scores differ
    assert scores[-1].answer_tokens > 1  # a multi-token answer: a mean over several positions


def test_batched_scoring_equals_one_at_a_time(lab) -> None:
    """Left padding with position ids changes no score, whatever else shares the batch."""
    examples, rationales, model, tokenizer = lab
    rationales = rationales[::2]  # both families, lengths that differ: real padding in every batch
    batched = rationale_difficulty(model, tokenizer, examples, rationales, batch_size=4)
    single = [rationale_difficulty(model, tokenizer, examples, [r], batch_size=1)[0] for r in rationales]
    for b, s in zip(batched, single):
        assert b.nll_with == pytest.approx(s.nll_with, abs=1e-5)
        assert b.nll_without == pytest.approx(s.nll_without, abs=1e-5)
        assert b.answer_tokens == s.answer_tokens


def test_answer_span_is_the_answer_or_the_sentence() -> None:
    target, (a, b) = answer_target("Step one. Step two.", "(B)", "bare")
    assert target == "Step one. Step two. Therefore, the answer is (B)." and target[a:b] == "(B)"
    target, (a, b) = answer_target("", "Yes", "sentence")
    assert target[a:b] == "Therefore, the answer is Yes." == target
    assert rationale_body("Ann lies. So Bob tells the truth. Therefore, the answer is Yes.") == \
        "Ann lies. So Bob tells the truth."


def test_accuracy_filter_keeps_only_graded_correct() -> None:
    rs = [_rid("q", 0, "a", True), _rid("q", 1, "b", False), _rid("q", 2, "c", None)]
    kept, dropped = accuracy_filter(rs)
    assert [r.id for r in kept] == ["q#0"] and [r.id for r in dropped] == ["q#1", "q#2"]


def test_ngram_jaccard() -> None:
    assert word_ngrams("A b c d", 3) == {("a", "b", "c"), ("b", "c", "d")}
    assert word_ngrams("two words", 3) == {("two", "words")}
    assert jaccard(word_ngrams("a b c d", 3), word_ngrams("a b c e", 3)) == pytest.approx(1 / 3)


def test_diversity_filter_drops_near_duplicates_at_the_threshold() -> None:
    base = "one two three four five six seven eight nine ten"
    rs = [
        _rid("q", 0, base),
        _rid("q", 1, base.replace("ten", "eleven")),  # 7 of 9 trigrams shared with #0: Jaccard 7/9 = 0.778
        _rid("q", 2, "a wholly different path of reasoning here"),
        _rid("p", 3, base),  # another question: never compared with q's rationales
        _rid("q", 4, base),  # an exact copy of #0
    ]
    sim = ngram_similarity(3)
    assert sim(rs[0], rs[1]) == pytest.approx(7 / 9)
    kept, dropped = diversity_filter(rs, threshold=0.7, similarity=sim)
    assert [r.id for r in kept] == ["q#0", "q#2", "p#3"]
    assert dropped["q#1"] == ("q#0", pytest.approx(7 / 9)) and dropped["q#4"][0] == "q#0"
    kept, _ = diversity_filter(rs, threshold=0.8, similarity=sim)  # 0.778 < 0.8: kept; the copy still goes
    assert [r.id for r in kept] == ["q#0", "q#1", "q#2", "p#3"]
    kept, _ = diversity_filter(rs, threshold=1.01, similarity=sim)  # above 1: keep everything
    assert len(kept) == 5


def test_embedding_similarity_is_cosine_of_mean_states(lab) -> None:
    _, rationales, model, tokenizer = lab
    sim = embedding_similarity(model, tokenizer, rationales[:3], batch_size=2)
    assert sim(rationales[0], rationales[0]) == pytest.approx(1.0, abs=1e-5)
    assert -1.0 <= sim(rationales[0], rationales[1]) < 1.0 - 1e-6
    # batched embedding equals embedding alone
    alone = embedding_similarity(model, tokenizer, [rationales[1], rationales[2]], batch_size=1)
    assert alone(rationales[1], rationales[2]) == pytest.approx(sim(rationales[1], rationales[2]), abs=1e-5)


def _score(rid: str, eid: str, rd: float) -> DifficultyScore:
    return DifficultyScore(rid, eid, math.log(rd), 0.0, 1)


def test_keep_top_k_per_question_and_global_fraction() -> None:
    scores = [_score("a0", "a", 2.0), _score("a1", "a", 0.5), _score("a2", "a", 1.0),
              _score("b0", "b", 3.0), _score("b1", "b", 4.0)]
    ids = lambda kept: [s.rationale_id for s in kept]  # noqa: E731
    assert ids(keep_by_difficulty(scores, "top_k", top_k=2)) == ["a1", "a2", "b0", "b1"]
    assert ids(keep_by_difficulty(scores, "top_k", top_k=1)) == ["a1", "b0"]
    assert ids(keep_by_difficulty(scores, "top_k", top_k=1, prefer="high")) == ["a0", "b1"]
    assert ids(keep_by_difficulty(scores, "fraction", fraction=0.4)) == ["a1", "a2"]  # ceil(0.4 * 5) = 2, lowest RD
    assert ids(keep_by_difficulty(scores, "fraction", fraction=0.5)) == ["a0", "a1", "a2"]
    assert len(keep_by_difficulty(scores, "all")) == 5


def test_the_random_control_keeps_morsds_count_per_question_in_a_seeded_order() -> None:
    """prefer "random" keeps as many per question as MoRSD does, ignoring RD: the same seed the same set, and
    over seeds every candidate is drawn (it is not RD's order in disguise)."""
    scores = [_score(f"{q}{i}", q, 1.0 + i) for q in "abcd" for i in range(3)]
    per_question = lambda kept: sorted(s.example_id for s in kept)  # noqa: E731
    low = keep_by_difficulty(scores, "top_k", top_k=1)
    draws = [keep_by_difficulty(scores, "top_k", top_k=1, prefer="random", seed=seed) for seed in range(20)]
    assert all(per_question(d) == per_question(low) for d in draws)
    assert keep_by_difficulty(scores, "top_k", top_k=1, prefer="random", seed=3) == draws[3]
    assert {s.rationale_id for d in draws for s in d} == {s.rationale_id for s in scores}


def test_select_rationales_end_to_end(lab, tmp_path) -> None:
    examples, rationales, model, tokenizer = lab
    duplicate = rationales[0].model_copy(update={"id": rationales[0].id + "-copy", "sample_index": 9})
    pool = [*rationales, duplicate]
    config = SelectionConfig(top_k=1, batch_size=4)
    selection = select_rationales(model, tokenizer, examples, pool, config)
    rows = {row["rationale_id"]: row for row in selection.table}
    assert set(rows) == {r.id for r in pool}
    assert all(r.correct for r in selection.kept)
    assert {rows[r.id]["reason"] for r in pool if r.correct is False} == {"incorrect"}
    if rationales[0].correct:
        assert rows[duplicate.id]["reason"] == "similar" and rows[duplicate.id]["similar_to"] == rationales[0].id
    per_question = {}
    for r in selection.kept:
        per_question[r.example_id] = per_question.get(r.example_id, 0) + 1
    assert set(per_question.values()) == {1}
    # the kept one has the lowest RD among its question's scored rationales
    for r in selection.kept:
        scored = [row for row in selection.table if row["example_id"] == r.example_id and "rd" in row]
        assert rows[r.id]["rd"] == min(row["rd"] for row in scored)
    selection.write_table(tmp_path / "scores.jsonl")
    lines = (tmp_path / "scores.jsonl").read_text().splitlines()
    assert len(lines) == len(pool) and json.loads(lines[0])["rationale_id"] == pool[0].id


def test_config_rejects_unknown_or_bad_options() -> None:
    with pytest.raises(CotdistillError, match="top_kk"):
        SelectionConfig.from_params({"top_kk": 3})
    with pytest.raises(CotdistillError, match="prefer"):
        SelectionConfig.from_params({"prefer": "middle"})
    with pytest.raises(CotdistillError, match="fraction"):
        SelectionConfig.from_params({"fraction": 0})


def test_rd_names_a_rationale_without_its_example(lab) -> None:
    examples, _, model, tokenizer = lab
    stray = _rid("nowhere", 0, "text")
    with pytest.raises(CotdistillError, match="nowhere#0"):
        rationale_difficulty(model, tokenizer, examples, [stray])


@pytest.mark.slow
def test_rd_on_a_real_student_matches_unpadded_scoring(smollm2) -> None:
    """SmolLM2 (grouped-query attention, its own tokenizer): batched, padded RD equals full unpadded passes."""
    model, tokenizer = smollm2
    (example,) = generate_examples("multistep_arithmetic_two", 1, seed=4)
    rationales = ScriptedTeacher(mistake_rate=0.5, seed=2).solve([example], n=2)[0]
    scores = rationale_difficulty(model, tokenizer, [example], rationales, batch_size=3)

    @torch.no_grad()
    def unpadded_nll(body: str) -> float:
        target, (a, b) = answer_target(body, example.answer, "bare")
        enc = encode(tokenizer, plain_prompt(example), target)
        ids = enc.prompt_ids + enc.target_ids
        scored = [len(enc.prompt_ids) + i for i, (x, y) in enumerate(enc.target_offsets) if x < b and a < y]
        logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
        return -sum(logp[p - 1, ids[p]].item() for p in scored) / len(scored)

    without = unpadded_nll("")
    assert scores[0].answer_tokens > 1 and len({len(r.text) for r in rationales}) > 1  # padding really happens
    for r, s in zip(rationales, scores):
        assert s.nll_with == pytest.approx(unpadded_nll(rationale_body(r.text)), abs=1e-4)
        assert s.nll_without == pytest.approx(without, abs=1e-4)


def test_rd_for_an_encoder_decoder_student(lab) -> None:
    """T5-style: the prompt feeds the encoder and the target is scored by the decoder, batched or not."""
    from transformers import T5Config, T5ForConditionalGeneration

    examples, rationales, _, tokenizer = lab
    torch.manual_seed(0)
    config = T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4,
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                      decoder_start_token_id=tokenizer.pad_token_id, initializer_factor=2.0)
    model = T5ForConditionalGeneration(config).eval()
    picked = [rationales[0], rationales[1], rationales[-1]]
    batched = rationale_difficulty(model, tokenizer, examples, picked, batch_size=3)
    by_id = {e.id: e for e in examples}
    for r, s in zip(picked, batched):
        example = by_id[r.example_id]
        nlls = []
        for body in (rationale_body(r.text), ""):
            target, (a, b) = answer_target(body, example.answer, "bare")
            enc = encode(tokenizer, plain_prompt(example), target)
            scored = [i for i, (x, y) in enumerate(enc.target_offsets) if x < b and a < y]
            labels = torch.tensor([enc.target_ids[:scored[-1] + 1]])
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([enc.prompt_ids]), labels=labels).logits[0].double()
            logp = torch.log_softmax(logits, -1)
            nlls.append(-sum(logp[i, enc.target_ids[i]].item() for i in scored) / len(scored))
        assert (s.nll_with, s.nll_without) == pytest.approx(nlls, abs=1e-4)
    assert len({round(s.rd, 4) for s in batched}) > 1
