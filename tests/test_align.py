"""Key-token alignment: minimal edit scripts, the documented tie-break, and accuracy on lab pairs."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import pytest
from rapidfuzz.distance import Levenshtein

from cotdistill.align import SpanScore, edit_script, key_token_mask, key_token_weights, key_token_weights_many
from cotdistill.lab import FAMILIES, ScriptedTeacher, generate_examples
from cotdistill.lab.cli import _dual_pairs as dual_pairs  # what `cotdistill lab --pairs` writes
from cotdistill.records import DualPair
from cotdistill.methods.encode import encode, encode_many
from cotdistill.show import Tally, pair_truth_spans, view_pairs


def _bench():
    """The pure-Python reference DP lives in bench/align.py (it is the benchmark's baseline)."""
    path = Path(__file__).parents[1] / "bench" / "align.py"
    spec = importlib.util.spec_from_file_location("bench_align", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


levenshtein_dp = _bench().levenshtein_dp


@pytest.fixture(scope="module")
def tokenizer():
    from cotdistill.models import load_tokenizer

    return load_tokenizer("smollm2-135m-instruct")


def _cost(script) -> int:
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in script if tag != "equal")


def test_masks_come_from_a_minimal_alignment_in_each_direction():
    rng = random.Random(0)
    for _ in range(200):
        a = [rng.randrange(6) for _ in range(rng.randrange(0, 25))]
        b = [rng.randrange(6) for _ in range(rng.randrange(0, 25))] if rng.random() < 0.5 else \
            [t if rng.random() < 0.8 else rng.randrange(6) for t in a]
        distance, _, _ = levenshtein_dp(a, b)
        assert Levenshtein.distance(a, b) == distance
        mask_a, mask_b = key_token_mask(a, b)
        for src, dst, mask in ((a, b, mask_a), (b, a, mask_b)):
            script = edit_script(src, dst)
            assert _cost(script) == distance  # the alignment behind the mask is a minimal one
            unmatched = [i for tag, i1, i2, *_ in script if tag in ("replace", "delete") for i in range(i1, i2)]
            assert [i for i, k in enumerate(mask) if k] == unmatched
            # the unmarked tokens are exactly the ones matched with equal tokens of the other side
            kept = [t for t, k in zip(src, mask) if not k]
            assert kept == [dst[j] for tag, _, _, j1, j2 in script if tag == "equal" for j in range(j1, j2)]
        # a side can only keep tokens the other side has: at least `distance` tokens are marked in all
        assert sum(mask_a) + sum(mask_b) >= distance


def test_identical_sequences_have_no_key_tokens_and_empty_ones_all():
    assert key_token_mask([3, 1, 4, 1, 5], [3, 1, 4, 1, 5]) == ([False] * 5, [False] * 5)
    assert key_token_mask([3, 1], []) == ([True, True], [])


def test_a_substituted_step_marks_exactly_its_tokens():
    prefix, suffix = [1, 2, 3, 4, 5], [6, 7, 8]
    step_a, step_b = [20, 21, 22], [30, 31, 32, 33]  # no token in common
    mask_a, mask_b = key_token_mask(prefix + step_a + suffix, prefix + step_b + suffix)
    assert mask_a == [False] * 5 + [True] * 3 + [False] * 3
    assert mask_b == [False] * 5 + [True] * 4 + [False] * 3


def test_a_substituted_number_marks_only_its_tokens_with_the_student_tokenizer(tokenizer):
    good = "Take 3 steps forward. Now at 5. Take 2 steps back. Now at 3. Therefore, the answer is No."
    bad = "Take 3 steps forward. Now at 5. Take 2 steps back. Now at 7. Therefore, the answer is Yes."
    keys = key_token_weights(tokenizer, good, bad, alpha=1.0, beta=0.025, offsets=True)
    for text, enc, key, changed in ((good, keys.correct, keys.correct_key, {" 3", " No"}),
                                    (bad, keys.wrong, keys.wrong_key, {" 7", " Yes"})):
        pieces = {text[a:b] if text[a:b].startswith(" ") else " " + text[a:b]
                  for (a, b), k in zip(enc.target_offsets, key) if k}
        assert pieces == changed
    assert set(keys.correct_weights) == {0.0, 1.0} and set(keys.wrong_weights) == {0.0, -0.025}


def test_tie_break_is_the_documented_one():
    # common prefix first: the repeated run is attributed to its later copy
    assert key_token_mask([1, 2, 3, 1, 2, 3, 4], [1, 2, 3, 4])[0] == [False] * 3 + [True] * 3 + [False]
    # on a tie, matching equal tokens beats replacing everything; deletions go as late as possible
    assert key_token_mask([5, 9, 5], [7, 5, 8])[0] == [False, True, True]
    assert edit_script([9, 9], [8]) == [("replace", 0, 1, 0, 1), ("delete", 1, 2, 1, 1)]


def _lab_pairs(family: str, n: int) -> list[DualPair]:
    teacher = ScriptedTeacher(mistake_rate=0.5, seed=11)
    examples = generate_examples(family, n, seed=4)
    return dual_pairs(teacher, examples, [rs[0] for rs in teacher.solve(examples)])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_key_tokens_on_lab_pairs_lie_in_the_true_key_steps(tokenizer, family):
    """Precision: edit-distance key tokens fall inside the steps the teacher changed. Recall is low by design
    (a changed step shares most of its words with its counterpart), so each true span is only required to be
    found, i.e. to hold some key token, in most pairs."""
    tally = Tally()
    pairs = _lab_pairs(family, 12)
    for pair, view in zip(pairs, view_pairs(tokenizer, pairs)):
        assert pair_truth_spans(pair) is not None
        tally.add(view)
    score = tally.score
    assert tally.with_truth == tally.pairs >= 10
    assert score.precision >= 0.95, (family, score)
    assert 0 < score.recall < 1
    assert score.span_recall >= 0.75, (family, score)


def test_span_score_counts_tokens():
    score = SpanScore()
    offsets = [(0, 2), (2, 4), (4, 6), (6, 8)]
    score.add(offsets, [True, True, False, False], [(1, 5)])  # truth: tokens 0,1,2; predicted 0,1
    assert (score.predicted, score.truth, score.hit, score.spans_found) == (2, 3, 2, 1)
    assert score.precision == 1.0 and score.recall == pytest.approx(2 / 3)


CODEX = Path("/work/shared/data/bbh/codex-cot")


def _codex_pairs(per_task: int) -> list[tuple[str, str, str]]:
    """(question, cot, other cot) from code-davinci-002's real BBH CoTs: consecutive questions of each task."""
    out = []
    for path in sorted(CODEX.glob("*-255000.json")):
        rows = json.loads(path.read_text())["outputs"][: 2 * per_task]
        for first, second in zip(rows[::2], rows[1::2]):
            out.append((first["input"].rsplit("\n\nQ: ", 1)[-1], first["prediction"], second["prediction"]))
    return out


def _one_at_a_time(tokenizer, prompt: str, correct: str, wrong: str):
    """The per-pair reference: each text through its own tokenizer call, masks from rapidfuzz's opcodes on id lists."""
    sides = []
    for text in (correct, wrong):
        enc = tokenizer(" " + text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc.input_ids) + [tokenizer.eos_token_id]
        offsets = [(max(a - 1, 0), max(b - 1, 0)) for a, b in enc.offset_mapping] + [(len(text), len(text))]
        sides.append((ids, offsets))
    masks = []
    for (src, _), (dst, _) in (sides, sides[::-1]):
        mask = [False] * len(src)
        for tag, i1, i2, _j1, _j2 in edit_script(src, dst):
            if tag in ("replace", "delete"):
                mask[i1:i2] = [True] * (i2 - i1)
        masks.append(mask)
    return tokenizer(prompt, add_special_tokens=False).input_ids, sides, masks


@pytest.mark.skipif(not CODEX.exists(), reason="shared BBH data not present")
def test_batched_key_tokens_equal_the_one_pair_at_a_time_path_on_lab_and_real_cots(tokenizer):
    """Batching the tokenizer and aligning ids as strings must not move a single key token, id or offset."""
    lab = [(f"Q{i}", p.chosen.text, p.rejected.text)
           for family in sorted(FAMILIES) for i, p in enumerate(_lab_pairs(family, 6))]
    cases = lab + _codex_pairs(per_task=3)
    cases.append(cases[0])  # a repeated pair is tokenized once but must come back whole, twice
    batched = key_token_weights_many(tokenizer, [(c, w) for _, c, w in cases], alpha=0.5, beta=0.1,
                                     prompts=[q for q, _, _ in cases], offsets=True)
    assert len(batched) == len(cases) >= 100
    # without offsets (EDIT's path: ids tokenized word by word) every id and key token is the same
    fast = key_token_weights_many(tokenizer, [(c, w) for _, c, w in cases], alpha=0.5, beta=0.1,
                                  prompts=[q for q, _, _ in cases])
    assert [(k.correct.target_offsets, k.wrong.target_offsets) for k in fast] == [(None, None)] * len(cases)
    same = ("prompt_ids", "target_ids")
    for f, b in zip(fast, batched):
        assert [getattr(f.correct, x) for x in same] == [getattr(b.correct, x) for x in same]
        assert [getattr(f.wrong, x) for x in same] == [getattr(b.wrong, x) for x in same]
        assert (f.correct_key, f.wrong_key, f.correct_weights, f.wrong_weights) == \
            (b.correct_key, b.wrong_key, b.correct_weights, b.wrong_weights)
    marked = 0
    for (prompt, correct, wrong), keys in zip(cases, batched):
        prompt_ids, ((c_ids, c_off), (w_ids, w_off)), (c_key, w_key) = _one_at_a_time(tokenizer, prompt, correct,
                                                                                      wrong)
        assert keys.correct.prompt_ids == keys.wrong.prompt_ids == prompt_ids
        assert (keys.correct.target_ids, keys.correct.target_offsets) == (c_ids, c_off)
        assert (keys.wrong.target_ids, keys.wrong.target_offsets) == (w_ids, w_off)
        assert (keys.correct_key, keys.wrong_key) == (c_key, w_key)
        assert keys.correct_weights == [0.5 if k else 0.0 for k in c_key]
        assert keys.wrong_weights == [-0.1 if k else 0.0 for k in w_key]
        marked += sum(c_key) + sum(w_key)
    assert marked > 0
    assert batched[0].correct.target_ids is not batched[-1].correct.target_ids  # repeated texts: separate lists


def test_the_garbage_collector_is_paused_only_while_pairs_are_built_and_restored_after(tokenizer, monkeypatch):
    """key_token_weights_many and encode_many switch Python's cyclic GC off while they build id lists (speed) and
    leave it as they found it: on if it was on, also when they fail; off if the caller had turned it off."""
    import gc

    from cotdistill.methods import encode as encode_module

    seen = []
    real = encode_module._target_ids

    def spy(*args, **kwargs):
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    assert gc.isenabled()
    monkeypatch.setattr(encode_module, "_target_ids", spy)
    key_token_weights_many(tokenizer, [("a b c", "a x c")])
    assert seen == [False] and gc.isenabled()
    with pytest.raises(ValueError):
        key_token_weights_many(tokenizer, [("a", "b")], prompts=["p", "q"])
    assert gc.isenabled()
    gc.disable()
    try:
        key_token_weights_many(tokenizer, [("a b c", "a x c")])
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_encode_many_matches_encode_and_checks_its_lengths(tokenizer):
    prompts, targets = ["Q: one?", "Q: two?", "Q: one?"], ["It is 1.", "It is 2.", "It is 1."]
    assert encode_many(tokenizer, prompts, targets) == [encode(tokenizer, p, t) for p, t in zip(prompts, targets)]
    assert encode_many(tokenizer, [], []) == []
    with pytest.raises(ValueError, match="2 prompts for 1 targets"):
        encode_many(tokenizer, prompts[:2], targets[:1])


def test_ids_that_are_not_code_points_align_like_any_other_tokens():
    """Ids above Unicode's range, negative ids and other hashables take the list path, with the same result."""
    assert key_token_mask([2**40, 7, 9], [2**40, 8, 9]) == ([False, True, False], [False, True, False])
    assert key_token_mask([-1, 7], [-1, 7, 3]) == ([False, False], [False, False, True])
    assert key_token_mask(["a", "b"], ["b"]) == ([True, False], [False])
    # surrogate code points are ordinary ids too (a vocabulary of 150k covers 0xD800..0xDFFF)
    assert key_token_mask([0xD800, 5, 0xDFFF], [0xD800, 6, 0xDFFF]) == ([False, True, False], [False, True, False])


DATA = Path("/work/shared/data")


def _real_texts(per_file: int | None) -> list[str]:
    """CoTs and questions from the shared real data, the first `per_file` rows of each file (None: all):
    code-davinci-002's BBH CoTs, AGIEval passages, questions and options (curly quotes, dashes, newlines, other
    scripts) and ARC questions with their option lists."""
    texts = [row["prediction"] for path in sorted(CODEX.glob("*-255000.json"))
             for row in json.loads(path.read_text())["outputs"][:per_file]]
    for path in sorted((DATA / "agieval").glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines()[:per_file]]
        texts += [r["passage"] or "" for r in rows] + [r["question"] + "\n" + "\n".join(r["options"]) for r in rows]
    texts += [row["input"] for row in json.loads((DATA / "arc" / "ARC-Easy-Test.json").read_text())[:per_file]]
    return texts


EDGE_TEXTS = [
    "", " ", "  two leading", "trailing ", "double  space", "tab\t then space \t x", "line\n next\n\n  indented",
    "ends in a newline\n", "ends in spaces  ", "non-breaking\u00a0 space, ideographic\u3000 space", "\u2028 sep",
    "it's they're we'll I'd 'quoted' x's", "3.14159 + 2,718 = 5.86 (approx.) 1000000", "Ünïcödé wörds, 日本語 テキスト",
    "emoji 🤖 and symbols → ≤ ∑", "<|im_end|> at the start", "inside<|im_end|>a word", "x <|endoftext|> y",
    "<|im_start|>assistant\nHi", "\x1c odd separators\x1f ", "a\r\n b\r\n",
]


def _check_word_by_word_ids(tokenizer, texts: list[str]) -> None:
    from cotdistill.methods.encode import _cuts_before_spaces

    assert _cuts_before_spaces(tokenizer.backend_tokenizer)  # SmolLM2 takes the word-by-word path
    fast = encode_many(tokenizer, [""] * len(texts), texts, offsets=False)
    whole = tokenizer([" " + t for t in texts], add_special_tokens=False).input_ids
    eos = tokenizer.eos_token_id
    for text, enc, ids in zip(texts, fast, whole):
        assert enc.target_ids == list(ids) + [eos], repr(text[:80])
        assert enc.target_offsets is None


@pytest.mark.skipif(not CODEX.exists(), reason="shared BBH data not present")
def test_word_by_word_ids_equal_whole_text_tokenization_on_real_data_and_edge_cases(tokenizer):
    """Offset-free encoding cuts texts before spaces and tokenizes each distinct word once; that must give the
    tokenizer's own ids on real texts and on the spacing, script and added-token cases that could break it."""
    texts = _real_texts(per_file=25) + EDGE_TEXTS
    assert len(texts) >= 1000
    _check_word_by_word_ids(tokenizer, texts)


@pytest.mark.slow
@pytest.mark.skipif(not CODEX.exists(), reason="shared BBH data not present")
def test_word_by_word_ids_equal_whole_text_tokenization_on_every_real_text(tokenizer):
    """The same on all of the shared real data: 6,511 BBH CoTs, 2,546 AGIEval passages and as many questions with
    their options, 2,376 ARC questions."""
    texts = _real_texts(per_file=None)
    assert len(texts) == 6511 + 2 * 2546 + 2376
    _check_word_by_word_ids(tokenizer, texts)


def test_offset_free_encoding_falls_back_to_whole_texts_where_words_are_not_independent():
    """A tokenizer whose pieces are not cut at spaces (here: no pre-tokenizer, so BPE merges across spaces) is
    not run word by word, and still gets its own ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from cotdistill.methods.encode import _cuts_before_spaces, _ids_word_by_word

    corpus = ["the cat sat on the mat", "the cat ate the rat", "a mat for the cat"] * 20
    merged = Tokenizer(models.BPE(unk_token="[UNK]"))
    merged.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=60, special_tokens=["[UNK]", "</s>"]))
    assert not _cuts_before_spaces(merged)
    # the check matters: word by word, this tokenizer would lose its merges across spaces
    assert _ids_word_by_word(merged, corpus[:3]) != [e.ids for e in merged.encode_batch([" " + t for t in corpus[:3]])]
    byte_level = Tokenizer(models.BPE())
    byte_level.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    byte_level.decoder = decoders.ByteLevel()
    byte_level.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=["</s>"],
                                                               initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    assert _cuts_before_spaces(byte_level)
    for backend in (merged, byte_level):
        tok = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="</s>")
        texts = corpus[:3] + ["the  cat", " the rat\n sat", "cat"]
        for encoder_decoder in (False, True):  # a leading space, or none (the decoder's text of a T5 student)
            fast = encode_many(tok, texts, texts, offsets=False, encoder_decoder=encoder_decoder)
            slow = encode_many(tok, texts, texts, encoder_decoder=encoder_decoder)
            assert [(e.prompt_ids, e.target_ids) for e in fast] == [(e.prompt_ids, e.target_ids) for e in slow]
