"""Turning (prompt, target) text into the token ids every recipe compiles, one way for all methods.

The prompt is tokenized exactly as evaluation feeds it to the student (no special tokens added; see
generation.generate_texts), the target is the continuation: a leading space, the text, then EOS. For an
encoder-decoder student (T5) the prompt is the encoder input, tokenized with the tokenizer's own special tokens
(T5's appends EOS, as it saw in pre-training), and the target is the decoder's text from its first character:
the decoder starts from its own start token, so no separating space is needed. Target tokens
carry character offsets into the target text, so a recipe can weight or segment tokens by character spans
(key steps, the answer sentence) without re-tokenizing pieces separately.

Without offsets (`offsets=False`, e.g. key-token alignment of thousands of pairs) a GPT-2-style byte-level BPE
tokenizer, SmolLM2's, is run word by word: the target is cut before each space and every distinct word is
tokenized once. That gives the same ids as tokenizing the whole text, because its pre-tokenizer (the GPT-2
regex) always starts a new piece at a space that follows a non-space character, and a piece never reaches
across such a space; BPE then works on each piece alone. Words repeat (the 6,511 real BBH CoTs hold 727k
words, 31k distinct), so this skips most of the tokenizer's per-token work; the rest is joining the words' ids
(bench/align.py). tests/test_align.py checks the ids against whole-text tokenization on lab and real texts.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain

from ..records import WeightedSequence

RATIONALE, ANSWER = 0, 1  # target segment ids (see WeightedSequence.target_segments)


@dataclass(frozen=True)
class Encoded:
    prompt_ids: list[int]
    target_ids: list[int]
    # per target token, a character span of the target text (EOS: empty); None when encoded with offsets=False
    target_offsets: list[tuple[int, int]] | None


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a block builds millions of small acyclic objects (token id
    lists), then on again if it was on. Left on, each of its passes walks every live object, so a batch of 5,207 pairs took
    0.9-1.6 s instead of 0.7 (bench/align.py); refcounting still frees everything, and nothing here makes cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def encode(tokenizer, prompt: str, target: str, *, separator: str = " ", encoder_decoder: bool = False) -> Encoded:
    """Token ids of `prompt` and of `separator + target + EOS`, with target offsets relative to `target`."""
    return encode_many(tokenizer, [prompt], [target], separator=separator, encoder_decoder=encoder_decoder)[0]


@cyclic_gc_paused()
def encode_many(tokenizer, prompts: Sequence[str], targets: Sequence[str], *, separator: str = " ",
                encoder_decoder: bool = False, offsets: bool = True) -> list[Encoded]:
    """`encode` for each (prompt, target), with one tokenizer call for all prompts and one for all targets.

    A fast tokenizer encodes a list in its Rust batch path, which is many times faster than one call per text
    (the per-call overhead dominates short texts); the ids and offsets are the same as one at a time. Repeated
    texts (a prompt shared by several targets, a CoT in several pairs) are tokenized once. With
    `offsets=False` target_offsets is None and the ids come from the faster `_target_ids` (same ids).
    """
    if len(prompts) != len(targets):
        raise ValueError(f"encode_many: {len(prompts)} prompts for {len(targets)} targets")
    if not targets:
        return []
    if encoder_decoder:
        separator = ""
    unique_prompts = list(dict.fromkeys(prompts))
    prompt_ids = dict(zip(unique_prompts, tokenizer(unique_prompts, add_special_tokens=encoder_decoder,
                                                    return_attention_mask=False).input_ids))
    unique_targets = list(dict.fromkeys(targets))
    if offsets:
        enc = tokenizer([separator + t for t in unique_targets], add_special_tokens=False,
                        return_offsets_mapping=True, return_attention_mask=False)
        target_ids, target_spans = enc.input_ids, enc.offset_mapping
    else:
        target_ids, target_spans = _target_ids(tokenizer, unique_targets, separator), [None] * len(unique_targets)
    shift, eos = len(separator), tokenizer.eos_token_id
    by_target: dict[str, tuple[list[int], list[tuple[int, int]] | None]] = {}
    for target, ids, spans in zip(unique_targets, target_ids, target_spans):  # fresh lists: appending is safe
        if eos is not None:
            ids.append(eos)
        if spans is not None:
            spans = [(max(a - shift, 0), max(b - shift, 0)) for a, b in spans] if shift else list(spans)
            if eos is not None:
                spans.append((len(target), len(target)))
        by_target[target] = (ids, spans)
    # each Encoded gets its own lists (callers may change them): a repeated target gets copies
    out, given = [], set()
    for prompt, target in zip(prompts, targets):
        ids, spans = by_target[target]
        if target in given:
            ids, spans = list(ids), None if spans is None else list(spans)
        given.add(target)
        out.append(Encoded(list(prompt_ids[prompt]), ids, spans))
    return out


def _target_ids(tokenizer, texts: list[str], separator: str) -> list[list[int]]:
    """Ids of `separator + text` for each text, no special tokens added: word by word where that is exact for
    this tokenizer (see the module docstring), else the Rust batch path without offsets."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a slow (Python) tokenizer
        return tokenizer([separator + t for t in texts], add_special_tokens=False).input_ids
    if separator == " " and _cuts_before_spaces(backend):
        return _ids_word_by_word(backend, texts)
    return [e.ids for e in backend.encode_batch_fast([separator + t for t in texts], add_special_tokens=False)]


def _cuts_before_spaces(backend) -> bool:
    """Whether this tokenizer's ids of a text are the concatenation of the ids of its pieces cut before spaces
    (each piece starting with its space), wherever the character before the space is not whitespace.

    True for byte-level BPE with the GPT-2 pre-tokenizer regex and no normalizer; an added token holding a space
    could straddle a cut, so none may."""
    from tokenizers import models, pre_tokenizers

    added = [t.content for t in backend.get_added_tokens_decoder().values()]
    return (backend.normalizer is None and isinstance(backend.pre_tokenizer, pre_tokenizers.ByteLevel)
            and backend.pre_tokenizer.use_regex and isinstance(backend.model, models.BPE)
            and not backend.model.dropout and not any(c.isspace() for text in added for c in text))


def _ids_word_by_word(backend, texts: list[str]) -> list[list[int]]:
    """Ids of " " + text for each text; see the module docstring. A text is tokenized whole where a cut would not
    be exact: after an empty piece or one ending in whitespace (a space after a space or a newline), or where a
    piece holds an added token (which may strip the spaces around it)."""
    pieces = [text.split(" ") for text in texts]  # " " + text == "".join(" " + piece for piece in pieces)
    words = list(set().union(*pieces))
    ids_of = {w: tuple(e.ids)
              for w, e in zip(words, backend.encode_batch_fast([" " + w for w in words], add_special_tokens=False))}
    # str.isspace covers every character the regex's \s does (and a few more): a conservative test
    open_end = {w for w in words if not w or w[-1].isspace()}
    added = [t.content for t in backend.get_added_tokens_decoder().values()]
    holds_added = re.compile("|".join(map(re.escape, added))) if added else None
    with_added = {w for w in words if holds_added.search(w)} if holds_added else set()
    get = ids_of.__getitem__

    def cut_is_exact(ps: list[str]) -> bool:  # an open-ended last piece is harmless; an added token never is
        return ((not open_end or open_end.isdisjoint(ps) or open_end.isdisjoint(ps[:-1]))
                and (not with_added or with_added.isdisjoint(ps)))

    out: list[list[int] | None] = [list(chain.from_iterable(map(get, ps))) if cut_is_exact(ps) else None
                                   for ps in pieces]
    whole = [i for i, ids in enumerate(out) if ids is None]
    for i, e in zip(whole, backend.encode_batch_fast([" " + texts[i] for i in whole], add_special_tokens=False)):
        out[i] = e.ids
    return out


def tokens_in_spans(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[bool]:
    """For each token, whether its characters overlap any of `spans` (half-open character ranges)."""
    return [any(a < e and s < b for s, e in spans) for a, b in offsets]


def weighted_sequence(
    encoded: Encoded,
    *,
    id: str,
    weights: Sequence[float] | float = 1.0,
    segments: Sequence[int] = (),
    instance_weight: float = 1.0,
    method: str = "",
    example_id: str = "",
    task: str = "",
    group: str = "",
) -> WeightedSequence:
    """A WeightedSequence from encoded text; a scalar weight applies to every target token."""
    n = len(encoded.target_ids)
    token_weights = [float(weights)] * n if isinstance(weights, (int, float)) else [float(w) for w in weights]
    return WeightedSequence(
        id=id,
        prompt_ids=encoded.prompt_ids,
        target_ids=encoded.target_ids,
        target_weights=token_weights,
        target_segments=list(segments),
        instance_weight=instance_weight,
        method=method,
        example_id=example_id,
        task=task,
        group=group,
    )
