"""Batches of WeightedSequences with their weights kept: padded, padding-free packed, and encoder-decoder.

Every collator emits the model inputs plus the tensors the loss reads, aligned with `labels`:
`token_weights` (float), `token_segments` (0 rationale, 1 answer), `token_instance` (which sequence of the
batch a token belongs to, -1 for padding), and per sequence `instance_weights` ([B], the records' static
weights) and `instance_tasks` ([B], equal ids for sequences of the same recipe task).

Batches are made of groups: the trainer's dataset holds one list of features per group (`group_features`), so
the sampler never splits a group (EDIT's pair) and the batch size counts groups; `GroupCollator` flattens them.

Causal LMs: `labels` holds the target token at its own position (-100 on prompt and padding), as in
transformers; the loss predicts position t from position t-1. Each sequence's first position is never a
target (nothing precedes it), which also keeps a packed row from predicting across a sequence boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import CotdistillError
from ..records import WeightedSequence

IGNORE = -100
LOSS_KEYS = ("token_weights", "token_segments", "token_instance", "instance_weights", "instance_tasks")


def sequence_features(seq: WeightedSequence, *, encoder_decoder: bool = False,
                      max_length: int | None = None) -> dict[str, Any] | None:
    """Plain lists for one record, truncated to `max_length`; None when no target token survives truncation.

    Causal: the right end of prompt + target is cut. Encoder-decoder: prompt and target are cut separately.
    """
    segments = seq.target_segments or [0] * len(seq.target_ids)
    if encoder_decoder:
        prompt = seq.prompt_ids[:max_length] if max_length else list(seq.prompt_ids)
        n = min(len(seq.target_ids), max_length) if max_length else len(seq.target_ids)
        return {"prompt_ids": prompt, "target_ids": seq.target_ids[:n], "weights": seq.target_weights[:n],
                "segments": segments[:n], "instance_weight": seq.instance_weight, "task": seq.task}
    ids = list(seq.prompt_ids) + list(seq.target_ids)
    labels = [IGNORE] * len(seq.prompt_ids) + list(seq.target_ids)
    weights = [0.0] * len(seq.prompt_ids) + list(seq.target_weights)
    segs = [0] * len(seq.prompt_ids) + list(segments)
    if max_length:
        ids, labels, weights, segs = ids[:max_length], labels[:max_length], weights[:max_length], segs[:max_length]
    labels[0] = IGNORE  # nothing precedes the first token
    if all(label == IGNORE for label in labels):
        return None
    return {"input_ids": ids, "labels": labels, "weights": weights, "segments": segs,
            "instance_weight": seq.instance_weight, "task": seq.task}


def group_features(sequences: Sequence[WeightedSequence], features: Sequence[dict[str, Any] | None]
                   ) -> list[list[dict[str, Any]]]:
    """The features of `sequences` as batching units: one list per non-empty `group` (in order of first
    appearance), a list of one for an ungrouped sequence; None features (nothing left to train) are dropped."""
    units: list[list[dict[str, Any]]] = []
    index: dict[str, int] = {}
    for seq, feature in zip(sequences, features):
        if feature is None:
            continue
        if not seq.group:
            units.append([feature])
        elif seq.group in index:
            units[index[seq.group]].append(feature)
        else:
            index[seq.group] = len(units)
            units.append([feature])
    return units


def _instance_tensors(features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Per-sequence tensors: static weights, and task ids (the order of the batch's sorted task names)."""
    names = sorted({f.get("task", "") for f in features})
    return {"instance_weights": torch.tensor([f["instance_weight"] for f in features], dtype=torch.float32),
            "instance_tasks": torch.tensor([names.index(f.get("task", "")) for f in features], dtype=torch.long)}


def _pad(rows: Sequence[Sequence[Any]], value: Any, dtype: torch.dtype) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([list(r) + [value] * (width - len(r)) for r in rows], dtype=dtype)


def _instance_rows(rows: Sequence[Sequence[Any]], labels: torch.Tensor) -> torch.Tensor:
    index = torch.tensor([[i] * len(r) + [-1] * (labels.shape[1] - len(r)) for i, r in enumerate(rows)])
    return index.where(labels != IGNORE, torch.full_like(index, -1))


def _padded(inputs: Sequence[Sequence[int]], targets: Sequence[Sequence[int]], features: list[dict[str, Any]],
            pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-padded inputs with a mask, and labels (with the loss tensors) padded to the longest target row."""
    labels = _pad(targets, IGNORE, torch.long)
    return {
        "input_ids": _pad(inputs, pad_token_id, torch.long),
        "attention_mask": _pad([[1] * len(r) for r in inputs], 0, torch.long),
        "labels": labels,
        "token_weights": _pad([f["weights"] for f in features], 0.0, torch.float32),
        "token_segments": _pad([f["segments"] for f in features], 0, torch.long),
        "token_instance": _instance_rows(targets, labels),
        **_instance_tensors(features),
    }


@dataclass
class PaddedCollator:
    """Right-padded causal-LM batches: [B, T] with an attention mask."""

    pad_token_id: int = 0

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return _padded([f["input_ids"] for f in features], [f["labels"] for f in features], features,
                       self.pad_token_id)


@dataclass
class PackedCollator:
    """Padding-free causal-LM batches: all sequences in one [1, sum(L)] row, position_ids restarting at 0.

    No attention mask is sent: transformers then reads sequence boundaries from the position_ids (block-diagonal
    masks for sdpa/eager, varlen kernels for flash attention). `check_packing_isolates` verifies that a model
    really keeps packed sequences apart before this collator is used with it.
    """

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        cat = lambda key: [x for f in features for x in f[key]]  # noqa: E731
        return {
            "input_ids": torch.tensor([cat("input_ids")], dtype=torch.long),
            "position_ids": torch.tensor([[p for f in features for p in range(len(f["input_ids"]))]]),
            "labels": torch.tensor([cat("labels")], dtype=torch.long),
            "token_weights": torch.tensor([cat("weights")], dtype=torch.float32),
            "token_segments": torch.tensor([cat("segments")], dtype=torch.long),
            "token_instance": torch.tensor([[i if lab != IGNORE else -1 for i, f in enumerate(features)
                                             for lab in f["labels"]]]),
            **_instance_tensors(features),
        }


@dataclass
class Seq2SeqCollator:
    """Encoder-decoder batches: the prompt feeds the encoder, the target is the decoder's labels (no shift)."""

    pad_token_id: int = 0

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        prompts = [f["prompt_ids"] or [self.pad_token_id] for f in features]  # an encoder needs one token
        return _padded(prompts, [f["target_ids"] for f in features], features, self.pad_token_id)


@dataclass
class GroupCollator:
    """Batches of groups (lists of features, from `group_features`): every group's sequences, in one batch."""

    inner: Any

    def __call__(self, groups: list[list[dict[str, Any]]]) -> dict[str, torch.Tensor]:
        return self.inner([feature for group in groups for feature in group])


def make_collator(*, encoder_decoder: bool, packing: bool, pad_token_id: int | None):
    pad = 0 if pad_token_id is None else pad_token_id
    if encoder_decoder:
        if packing:
            raise CotdistillError("packing is for decoder-only models; an encoder-decoder student trains padded")
        return Seq2SeqCollator(pad)
    return PackedCollator() if packing else PaddedCollator(pad)


@torch.no_grad()
def check_packing_isolates(model: torch.nn.Module, vocab_size: int, atol: float = 1e-4) -> None:
    """Raise unless the model's attention keeps packed sequences apart (packed logits == separate logits).

    A probe of two short random sequences: cheap, and it tests the real kernel rather than trusting a list.
    """
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        gen = torch.Generator().manual_seed(0)
        a = torch.randint(0, vocab_size, (1, 5), generator=gen).to(device)
        b = torch.randint(0, vocab_size, (1, 4), generator=gen).to(device)
        alone = model(input_ids=b, use_cache=False).logits
        packed = model(input_ids=torch.cat([a, b], 1), use_cache=False,
                       position_ids=torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2, 3]], device=device)).logits
        gap = (packed[:, 5:].float() - alone.float()).abs().max().item()
    finally:
        model.train(was_training)
    if gap > atol:
        attn = getattr(getattr(model, "config", None), "_attn_implementation", "?")
        raise CotdistillError(
            f"packing: this model ({type(model).__name__}, attention '{attn}') lets packed sequences attend to each "
            f"other (logits differ by {gap:.3g}); train with packing off"
        )
