"""Key tokens of a dual CoT pair: the tokens an edit-distance alignment cannot match (EDIT's key reasoning steps).

The alignment runs on the student's token ids, with unit costs for insert, delete and replace, through
rapidfuzz's C implementation of Levenshtein (it accepts lists of ints). As in EDIT's code it runs in both
directions: side a's key tokens are the ones a deletes or replaces on the way to b (a as the source), and side b's
are the ones b deletes or replaces on the way to a (b as the source). Tokens matched by the alignment get no
weight; in EDIT the correct CoT's key tokens are trained up (α) and the wrong CoT's pushed down (−β).

Tie-break (which of several minimal alignments is used; pinned by tests/test_align.py):
- rapidfuzz first strips the common prefix and then the common suffix, and those tokens are always matched. So
  a repeated run next to a shared boundary is attributed to the copy that is not part of the prefix: in
  [1 2 3 1 2 3 4] vs [1 2 3 4] the key tokens of the longer side are its second "1 2 3".
- In what is left, the backtrace runs from the end and on a tie prefers, from the source's point of view, a
  deletion over a diagonal step (match or replace) over an insertion. Deleted source tokens therefore sit as
  late as possible and a tie between "match these two equal tokens" and "replace everything" goes to the match:
  [5 9 5] vs [7 5 8] matches the first 5 of the source with the 5 of the target (distance 3 either way).
- EDIT's own DP (delete, then insert, then diagonal, with no affix stripping) breaks ties differently, so the two
  key sets can differ where alignments tie; on bench/align.py's 300-token lab pairs 99.98% of marks agree.

Speed (bench/align.py): token ids go to rapidfuzz as strings, one character per id, which it compares natively
(a list of ints is hashed element by element first); the alignment is the same. Pairs are compiled in batches
(`key_token_weights_many`): all texts are tokenized in one call, without character offsets unless asked for
(methods.encode tokenizes each distinct word once), each side's masks and weights are set only at the
positions its edit ops name, and the cyclic garbage collector is paused while the lists are built.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from rapidfuzz.distance import Levenshtein

from .methods.encode import Encoded, cyclic_gc_paused, encode_many, tokens_in_spans


def edit_script(source: Sequence[Hashable], target: Sequence[Hashable]) -> list[tuple[str, int, int, int, int]]:
    """rapidfuzz's minimal alignment as (tag, i1, i2, j1, j2) blocks; tags: equal, replace, delete, insert."""
    ops = Levenshtein.opcodes(list(source), list(target))
    return [(o.tag, o.src_start, o.src_end, o.dest_start, o.dest_end) for o in ops]


_UINT32 = "I" if array("I").itemsize == 4 else "L"  # a 4-byte unsigned array type, read as UTF-32 code points


def _as_text(ids: Sequence[Hashable]) -> str | list[Hashable]:
    """Token ids as a string of code points (rapidfuzz's fastest input), or as a list when they are not all ints
    in 0..0x10FFFF. Lone surrogate code points are fine: rapidfuzz only compares characters for equality."""
    try:
        return array(_UINT32, ids).tobytes().decode("utf-32-le", "surrogatepass")
    except (TypeError, OverflowError, UnicodeDecodeError):
        return list(ids)


def _key_positions(source: str | list[Hashable], target: str | list[Hashable]) -> list[int]:
    """Positions of `source` tokens the alignment deletes or replaces (EDIT keeps those ops and drops the inserts).

    Edit ops are the single steps behind `edit_script`'s blocks, so they mark the same tokens."""
    return [i for tag, i, _j in Levenshtein.editops(source, target).as_list() if tag != "insert"]


def _marked(n: int, positions: list[int], value: Any, rest: Any) -> list[Any]:
    """A list of `n` copies of `rest` with `value` at `positions` (a few dozen of ~300: cheaper than a loop over n)."""
    out = [rest] * n
    for i in positions:
        out[i] = value
    return out


def key_token_mask(ids_a: Sequence[Hashable], ids_b: Sequence[Hashable]) -> tuple[list[bool], list[bool]]:
    """For each token of a and of b, whether it is a key token (unmatched by the minimal alignment).

    Each side is aligned as the source against the other (both directions, as EDIT does), so each side's key
    tokens follow the same tie-break relative to itself (see the module docstring). Identical sequences give
    no key tokens; a sequence against an empty one is all key tokens.
    """
    a, b = _as_text(ids_a), _as_text(ids_b)
    return _marked(len(a), _key_positions(a, b), True, False), _marked(len(b), _key_positions(b, a), True, False)


@dataclass(frozen=True)
class KeyTokens:
    """One pair compiled for a student: both targets encoded, their key tokens, and their KRSL weights."""

    correct: Encoded
    wrong: Encoded
    correct_key: list[bool]
    wrong_key: list[bool]
    correct_weights: list[float]  # alpha on key tokens, 0 elsewhere
    wrong_weights: list[float]  # -beta on key tokens, 0 elsewhere (negative: unlikelihood)


def key_token_weights(tokenizer, correct_text: str, wrong_text: str, alpha: float = 1.0, beta: float = 0.025,
                      prompt: str = "", offsets: bool = False) -> KeyTokens:
    """One pair's key tokens and weights; see key_token_weights_many."""
    return key_token_weights_many(tokenizer, [(correct_text, wrong_text)], alpha, beta, [prompt], offsets)[0]


@cyclic_gc_paused()
def key_token_weights_many(tokenizer, pairs: Sequence[tuple[str, str]], alpha: float = 1.0, beta: float = 0.025,
                           prompts: Sequence[str] | None = None, offsets: bool = False) -> list[KeyTokens]:
    """Encode each (correct, wrong) CoT pair as targets of its prompt (methods.encode, so ids match training) and
    weight their key tokens. All texts are tokenized in one batch; `prompts` defaults to "" for every pair.
    `offsets=True` also fills the targets' character offsets (for showing key tokens in the text; slower).

    Only the targets are aligned: the prompt is shared and would be stripped as a common prefix anyway.
    EOS ends both targets, so it is never a key token.
    """
    if beta < 0:
        raise ValueError(f"beta is a magnitude (the wrong side gets -beta); got {beta}")
    prompts = [""] * len(pairs) if prompts is None else list(prompts)
    if len(prompts) != len(pairs):
        raise ValueError(f"key_token_weights_many: {len(prompts)} prompts for {len(pairs)} pairs")
    # one tokenizer call for both sides of every pair: corrects first, then wrongs
    encoded = encode_many(tokenizer, prompts + prompts, [c for c, _ in pairs] + [w for _, w in pairs],
                          offsets=offsets)
    out = []
    for correct, wrong in zip(encoded[:len(pairs)], encoded[len(pairs):]):
        a, b = _as_text(correct.target_ids), _as_text(wrong.target_ids)
        on_a, on_b = _key_positions(a, b), _key_positions(b, a)
        out.append(KeyTokens(correct, wrong, _marked(len(a), on_a, True, False), _marked(len(b), on_b, True, False),
                             _marked(len(a), on_a, alpha, 0.0), _marked(len(b), on_b, -beta, 0.0)))
    return out


@dataclass
class SpanScore:
    """Token counts of predicted key tokens against ground-truth character spans, summed over sides and pairs."""

    predicted: int = 0  # key tokens found by the alignment
    truth: int = 0  # tokens overlapping a ground-truth span
    hit: int = 0  # tokens that are both
    spans: int = 0  # ground-truth spans
    spans_found: int = 0  # ground-truth spans holding at least one predicted key token

    def add(self, offsets: Sequence[tuple[int, int]], key: Sequence[bool], spans: Sequence[tuple[int, int]]) -> None:
        truth = tokens_in_spans(offsets, spans)
        self.predicted += sum(key)
        self.truth += sum(truth)
        self.hit += sum(k and t for k, t in zip(key, truth))
        self.spans += len(spans)
        for span in spans:
            inside = tokens_in_spans(offsets, [span])
            self.spans_found += any(k and i for k, i in zip(key, inside))

    def merge(self, other: SpanScore) -> None:
        for name in ("predicted", "truth", "hit", "spans", "spans_found"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def precision(self) -> float:
        return self.hit / self.predicted if self.predicted else float("nan")

    @property
    def recall(self) -> float:
        return self.hit / self.truth if self.truth else float("nan")

    @property
    def span_recall(self) -> float:
        return self.spans_found / self.spans if self.spans else float("nan")
