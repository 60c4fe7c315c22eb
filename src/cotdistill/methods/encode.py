"""Turning (prompt, target) text into the token ids every recipe compiles, one way for all methods.

The prompt is tokenized exactly as evaluation feeds it to the student (no special tokens added; see
generation.generate_texts), the target is the continuation: a leading space, the text, then EOS. For an
encoder-decoder student (T5) the prompt is the encoder input, tokenized with the tokenizer's own special tokens
(T5's appends EOS, as it saw in pre-training), and the target is the decoder's text from its first character:
the decoder starts from its own start token, so no separating space is needed. Target tokens
carry character offsets into the target text, so a recipe can weight or segment tokens by character spans
(key steps, the answer sentence) without re-tokenizing pieces separately.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..records import WeightedSequence

RATIONALE, ANSWER = 0, 1  # target segment ids (see WeightedSequence.target_segments)


@dataclass(frozen=True)
class Encoded:
    prompt_ids: list[int]
    target_ids: list[int]
    target_offsets: list[tuple[int, int]]  # per target token, a character span of the target text; EOS is empty


def encode(tokenizer, prompt: str, target: str, *, separator: str = " ", encoder_decoder: bool = False) -> Encoded:
    """Token ids of `prompt` and of `separator + target + EOS`, with target offsets relative to `target`."""
    return encode_many(tokenizer, [prompt], [target], separator=separator, encoder_decoder=encoder_decoder)[0]


def encode_many(tokenizer, prompts: Sequence[str], targets: Sequence[str], *, separator: str = " ",
                encoder_decoder: bool = False) -> list[Encoded]:
    """`encode` for each (prompt, target), with one tokenizer call for all prompts and one for all targets.

    A fast tokenizer encodes a list in its Rust batch path, which is many times faster than one call per text
    (the per-call overhead dominates short texts); the ids and offsets are the same as one at a time. Repeated
    texts (a prompt shared by several targets, a CoT in several pairs) are tokenized once.
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
    enc = tokenizer([separator + t for t in unique_targets], add_special_tokens=False, return_offsets_mapping=True,
                    return_attention_mask=False)
    shift, eos = len(separator), tokenizer.eos_token_id
    by_target: dict[str, tuple[list[int], list[tuple[int, int]]]] = {}
    for target, ids, spans in zip(unique_targets, enc.input_ids, enc.offset_mapping):
        offsets = [(max(a - shift, 0), max(b - shift, 0)) for a, b in spans] if shift else list(spans)
        ids = list(ids)
        if eos is not None:
            ids.append(eos)
            offsets.append((len(target), len(target)))
        by_target[target] = (ids, offsets)
    # each Encoded gets its own lists: callers may hold and change them independently
    return [Encoded(list(prompt_ids[p]), list(by_target[t][0]), list(by_target[t][1])) for p, t in zip(prompts, targets)]


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
