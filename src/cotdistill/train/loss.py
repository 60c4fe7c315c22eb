"""The weighted loss every method trains with: token-weighted, instance-weighted cross-entropy, chunked.

For supervised target token t of instance i, with next-token NLL l_it = -log p(y_it | context):

    loss = (1 / N) * sum_i v_i * sum_t w_it * m_it * l_it

- w_it: the token weight from the WeightedSequence (may be negative: unlikelihood on EDIT's wrong key tokens).
- v_i = u_i * d_i: the record's static `instance_weight` u_i times a dynamic weight d_i from a registered
  instance weighting (`INSTANCE_WEIGHTINGS`, "none" gives 1), computed from detached per-instance segment NLLs
  and the instances' tasks (so a weighting can compare an instance with those of its own task only).
- m_it: the negative-weight cap. With a cap c, a token with w_it < 0 whose current (detached) NLL is already
  l_it >= c contributes nothing (m_it = 0): the model has pushed that wrong token down far enough. Otherwise
  m_it = 1. (EDIT's released code drops such tokens at ">= threshold"; we keep that boundary.)
- N: the normaliser passed in, the global number of supervised tokens (label != -100) over every accumulation
  micro-batch and every process of one optimizer step. Because N does not depend on how the step is split,
  gradient accumulation, padding-free packing and data parallelism all give the gradient of one large batch.

Memory: the vocabulary projection runs on chunks of `chunk_size` supervised positions, and each chunk is
recomputed in backward (activation checkpointing), so neither forward nor backward ever holds logits for more
than one chunk; backward turns a chunk's logits into their gradient in place (`_LeanCrossEntropy`), so a chunk
costs about one [chunk, vocabulary] buffer rather than the three or four of a plain cross-entropy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from ..errors import CotdistillError

RATIONALE_SEGMENT, ANSWER_SEGMENT = 0, 1
NUM_SEGMENTS = 2

InstanceWeighting = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""Maps detached per-instance segment mean NLLs [B, 2] (0: rationale, 1: answer; 0 where absent) and the
instances' task ids [B] (equal ids: the same task of the recipe) to [B] weights."""


def _no_weighting(segment_nll: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:
    return torch.ones(segment_nll.shape[0], dtype=segment_nll.dtype, device=segment_nll.device)


INSTANCE_WEIGHTINGS: dict[str, Callable[[dict[str, Any]], InstanceWeighting]] = {
    "none": lambda params: _no_weighting,
}
"""Dynamic instance weightings by name (TrainingStage.instance_weighting): each entry builds the weighting from
its parameters (the stage's extra[name]); recipe modules add theirs here (methods/coped.py)."""


def instance_weighting(name: str | None, params: dict[str, Any] | None = None) -> InstanceWeighting:
    key = name or "none"
    if key not in INSTANCE_WEIGHTINGS:
        known = ", ".join(sorted(INSTANCE_WEIGHTINGS))
        raise CotdistillError(f"unknown instance weighting {key!r}; registered: {known}")
    return INSTANCE_WEIGHTINGS[key](params or {})


@dataclass
class WeightedLoss:
    loss: torch.Tensor  # the normalised weighted sum (carries the gradient)
    token_nll: torch.Tensor  # [K] detached NLL of each supervised token
    segment_nll: torch.Tensor  # [B, 2] detached per-instance mean NLL per segment
    instance_weights: torch.Tensor  # [B] the weights actually applied (static x dynamic)


class _LeanCrossEntropy(torch.autograd.Function):
    """Per-row cross-entropy whose backward turns the saved logits into their own gradient, in place.

    The gradient of -log softmax(x)[y] is softmax(x) - onehot(y): exp(x - logsumexp) computed in the logits'
    buffer, so backward holds one [C, V] buffer where F.cross_entropy holds the logits, the log-softmax and
    their gradients. Only for logits this module owns (a fresh head output or an fp32 copy): the buffer is
    overwritten.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        lse = torch.logsumexp(logits, -1)
        ctx.save_for_backward(logits, targets, lse)
        return lse - logits.gather(1, targets[:, None]).squeeze(1)

    @staticmethod
    def backward(ctx, grad_nll: torch.Tensor):
        logits, targets, lse = ctx.saved_tensors
        grad = logits.sub_(lse[:, None]).exp_()
        grad[torch.arange(targets.shape[0], device=targets.device), targets] -= 1
        return grad.mul_(grad_nll[:, None]), None


def _chunk_nll(head: Callable[[torch.Tensor], torch.Tensor] | None, states: torch.Tensor,
               targets: torch.Tensor) -> torch.Tensor:
    logits = states if head is None else head(states)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()  # the log-softmax in full precision (a copy this function owns)
    elif head is None:
        return F.cross_entropy(logits, targets, reduction="none")  # the caller's logits: never overwrite them
    return _LeanCrossEntropy.apply(logits, targets)


def token_nll(states: torch.Tensor, targets: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor] | None = None,
              chunk_size: int = 1024) -> torch.Tensor:
    """Per-token NLL [K] of `targets` [K] from hidden states [K, H] through `head`, or from logits [K, V] if no head.

    Chunks are checkpointed when they need a gradient, so backward recomputes one chunk's logits at a time.
    """
    if states.shape[0] != targets.shape[0]:
        raise ValueError(f"{states.shape[0]} positions but {targets.shape[0]} targets")
    pieces = []
    for start in range(0, states.shape[0], chunk_size):
        s, t = states[start:start + chunk_size], targets[start:start + chunk_size]
        if torch.is_grad_enabled() and s.requires_grad:
            pieces.append(checkpoint(_chunk_nll, head, s, t, use_reentrant=False))
        else:
            pieces.append(_chunk_nll(head, s, t))
    if not pieces:
        return states.new_zeros(0)
    return torch.cat(pieces)


def segment_means(nll: torch.Tensor, instance: torch.Tensor, segment: torch.Tensor, num_instances: int) -> torch.Tensor:
    """Mean of `nll` per (instance, segment) as a [B, 2] tensor; 0 where an instance has no token of a segment."""
    flat = instance * NUM_SEGMENTS + segment.clamp(0, NUM_SEGMENTS - 1)
    total = torch.zeros(num_instances * NUM_SEGMENTS, dtype=nll.dtype, device=nll.device)
    count = torch.zeros_like(total)
    total.index_add_(0, flat, nll)
    count.index_add_(0, flat, torch.ones_like(nll))
    return (total / count.clamp(min=1)).view(num_instances, NUM_SEGMENTS)


def weighted_token_loss(
    states: torch.Tensor,
    targets: torch.Tensor,
    token_weights: torch.Tensor,
    token_instance: torch.Tensor,
    instance_weights: torch.Tensor,
    normaliser: float | torch.Tensor,
    *,
    head: Callable[[torch.Tensor], torch.Tensor] | None = None,
    token_segments: torch.Tensor | None = None,
    negative_nll_cap: float | None = None,
    weighting: str | InstanceWeighting | None = None,
    instance_tasks: torch.Tensor | None = None,
    chunk_size: int = 1024,
) -> WeightedLoss:
    """The module docstring's loss over K supervised tokens of B instances.

    states: [K, H] hidden states at the positions that predict `targets` (with `head` the vocabulary projection),
    or [K, V] logits when `head` is None. targets, token_weights, token_instance (index into the B instances) and
    token_segments: [K]. instance_weights: [B] static weights. instance_tasks: [B] task ids for the weighting (None:
    one task). normaliser: N (> 0).
    """
    if token_segments is None:
        token_segments = torch.zeros_like(targets)
    num_instances = instance_weights.shape[0]
    if instance_tasks is None:
        instance_tasks = torch.zeros(num_instances, dtype=torch.long, device=instance_weights.device)
    nll = token_nll(states, targets, head, chunk_size)
    detached = nll.detach()
    segment_nll = segment_means(detached, token_instance, token_segments, num_instances)
    weigh = weighting if callable(weighting) else instance_weighting(weighting)
    dynamic = weigh(segment_nll, instance_tasks).to(detached.dtype)
    if dynamic.shape != (num_instances,):
        raise ValueError(f"instance weighting returned shape {tuple(dynamic.shape)}, expected ({num_instances},)")
    applied = instance_weights.to(detached.dtype) * dynamic.detach()
    w = token_weights.to(detached.dtype) * applied[token_instance]
    if negative_nll_cap is not None:
        # Stop pushing a wrong token down once its NLL reached the cap (no unbounded unlikelihood ascent).
        w = torch.where((token_weights < 0) & (detached >= negative_nll_cap), torch.zeros_like(w), w)
    loss = (w * nll).sum() / normaliser
    return WeightedLoss(loss, detached, segment_nll, applied)

