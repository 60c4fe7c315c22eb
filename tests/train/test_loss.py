"""The weighted loss equals its formula computed token by token, for random weights, caps and instance weights."""

from __future__ import annotations

import torch
from train_util import VOCAB, random_sequences, tiny_llama
from transformers import TrainingArguments

from cotdistill.train.collate import PackedCollator, PaddedCollator, sequence_features
from cotdistill.train.loss import INSTANCE_WEIGHTINGS, segment_means, weighted_token_loss
from cotdistill.train.trainer import WeightedTrainer


def naive(states, targets, head, weights, instance, inst_w, normaliser, cap=None, dynamic=None):
    """One token at a time: full log-softmax, the weight, the cap rule, the instance weight."""
    total = 0.0
    for k in range(targets.shape[0]):
        logits = states[k] if head is None else head(states[k])
        nll = -torch.log_softmax(logits, -1)[targets[k]]
        w = weights[k]
        if cap is not None and w < 0 and nll.item() >= cap:
            continue
        v = inst_w[instance[k]] * (1.0 if dynamic is None else dynamic[instance[k]])
        total = total + v * w * nll
    return total / normaliser


def _random_problem(k=37, b=5, h=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(k, h, generator=g, dtype=torch.float64, requires_grad=True)
    head = torch.nn.Linear(h, VOCAB, bias=False).double()
    torch.nn.init.normal_(head.weight, std=2.0, generator=g)
    targets = torch.randint(0, VOCAB, (k,), generator=g)
    weights = torch.rand(k, generator=g, dtype=torch.float64) * 3 - 1  # in [-1, 2): some negative
    instance = torch.randint(0, b, (k,), generator=g)
    segments = torch.randint(0, 2, (k,), generator=g)
    inst_w = torch.rand(b, generator=g, dtype=torch.float64) + 0.5
    return states, head, targets, weights, instance, segments, inst_w


def test_chunked_loss_and_gradient_equal_token_by_token_reference():
    """Property: chunking (with recompute in backward) changes neither the loss nor its gradients (1e-6)."""
    states, head, targets, weights, instance, segments, inst_w = _random_problem()
    ours = weighted_token_loss(states, targets, weights, instance, inst_w, 29.0, head=head,
                               token_segments=segments, chunk_size=4)
    g_ours = torch.autograd.grad(ours.loss, [states, head.weight])
    ref = naive(states, targets, head, weights, instance, inst_w, 29.0)
    g_ref = torch.autograd.grad(ref, [states, head.weight])
    assert abs(ours.loss.item() - ref.item()) < 1e-6
    for a, b in zip(g_ours, g_ref):
        assert torch.allclose(a, b, atol=1e-6, rtol=0)


def test_logits_path_equals_hidden_path():
    states, head, targets, weights, instance, segments, inst_w = _random_problem(seed=1)
    a = weighted_token_loss(states, targets, weights, instance, inst_w, 10.0, head=head, chunk_size=5).loss
    b = weighted_token_loss(head(states), targets, weights, instance, inst_w, 10.0, chunk_size=7).loss
    assert abs(a.item() - b.item()) < 1e-9


def test_negative_cap_drops_only_wrong_tokens_already_pushed_past_it():
    """Property: a negative-weight token at or above the cap contributes no loss and no gradient; others do."""
    states, head, targets, weights, instance, segments, inst_w = _random_problem(seed=2)
    nll = torch.nn.functional.cross_entropy(head(states), targets, reduction="none").detach()
    cap = nll.median().item()
    capped = (weights < 0) & (nll >= cap)
    assert capped.any() and ((weights < 0) & ~capped).any()  # the draw exercises both sides
    ours = weighted_token_loss(states, targets, weights, instance, inst_w, 13.0, head=head, negative_nll_cap=cap)
    ref = naive(states, targets, head, weights, instance, inst_w, 13.0, cap=cap)
    assert abs(ours.loss.item() - ref.item()) < 1e-6
    grad = torch.autograd.grad(ours.loss, states)[0]
    assert torch.all(grad[capped] == 0)
    assert torch.all(grad[~capped].abs().sum(-1) > 0)
    uncapped = weighted_token_loss(states, targets, weights, instance, inst_w, 13.0, head=head)
    assert uncapped.loss.item() != ours.loss.item()


def test_instance_weighting_hook_sees_detached_segment_means():
    """Property: a registered weighting gets per-instance [rationale, answer] mean NLLs and scales instances."""
    states, head, targets, weights, instance, segments, inst_w = _random_problem(seed=3)
    seen = {}

    def by_answer(segment_nll, tasks):
        seen["x"], seen["tasks"] = segment_nll, tasks
        return torch.exp(-segment_nll[:, 1])

    INSTANCE_WEIGHTINGS["test-by-answer"] = lambda params: by_answer
    try:
        ours = weighted_token_loss(states, targets, weights, instance, inst_w, 17.0, head=head,
                                   token_segments=segments, weighting="test-by-answer")
    finally:
        del INSTANCE_WEIGHTINGS["test-by-answer"]
    nll = torch.nn.functional.cross_entropy(head(states), targets, reduction="none").detach()
    for i in range(inst_w.shape[0]):
        for s in (0, 1):
            sel = (instance == i) & (segments == s)
            expected = nll[sel].mean().item() if sel.any() else 0.0
            assert abs(seen["x"][i, s].item() - expected) < 1e-9
    assert not seen["x"].requires_grad and seen["tasks"].tolist() == [0] * inst_w.shape[0]  # one task by default
    ref = naive(states, targets, head, weights, instance, inst_w, 17.0, dynamic=torch.exp(-seen["x"][:, 1]))
    assert abs(ours.loss.item() - ref.item()) < 1e-6


def test_segment_means_zero_where_segment_absent():
    means = segment_means(torch.tensor([1.0, 3.0, 5.0]), torch.tensor([0, 0, 2]), torch.tensor([0, 0, 1]), 3)
    assert means.tolist() == [[2.0, 0.0], [0.0, 0.0], [0.0, 5.0]]


def _trainer(model, chunked=True, cap=None):
    args = TrainingArguments(output_dir="/tmp/unused-train-test", report_to=[], remove_unused_columns=False,
                             use_cpu=True)
    return WeightedTrainer(model=model, args=args, negative_nll_cap=cap, chunked=chunked)


def test_trainer_loss_on_a_real_model_equals_per_token_reference():
    """Property: the trainer's shift, masking, hidden-state hook and weights give the formula's value."""
    torch.manual_seed(0)
    model = tiny_llama().double()
    seqs = random_sequences(5, seed=4)
    batch = PaddedCollator()([sequence_features(s) for s in seqs])
    n = int((batch["labels"] != -100).sum())
    with torch.no_grad():
        ref = 0.0
        for s in seqs:  # each sequence alone, no padding, full logits
            ids = torch.tensor([s.prompt_ids + s.target_ids])
            logp = torch.log_softmax(model(input_ids=ids).logits[0], -1)
            p = len(s.prompt_ids)
            for j, (tok, w) in enumerate(zip(s.target_ids, s.target_weights)):
                if p + j == 0:
                    continue  # the first token of a sequence has no context
                ref += s.instance_weight * w * -logp[p + j - 1, tok].item()
        ref /= n
        for chunked in (True, False):
            loss = _trainer(model, chunked=chunked).compute_loss(model, batch).item()
            assert abs(loss - ref) < 1e-6, (chunked, loss, ref)


def test_packed_and_padded_batches_give_the_same_loss():
    """Property: padding-free packing (sdpa and eager attention on CPU) keeps sequences apart: same loss."""
    seqs = random_sequences(6, seed=5)
    feats = [sequence_features(s) for s in seqs]
    for attn in ("sdpa", "eager"):
        model = tiny_llama(attn=attn)
        trainer = _trainer(model)
        padded = trainer.compute_loss(model, PaddedCollator()(feats))
        packed = trainer.compute_loss(model, PackedCollator()(feats))
        assert abs(padded.item() - packed.item()) < 1e-6, attn
        g_pad = torch.autograd.grad(padded, list(model.parameters()))
        g_pack = torch.autograd.grad(trainer.compute_loss(model, PackedCollator()(feats)), list(model.parameters()))
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g_pad, g_pack))


def test_vocabulary_projection_never_sees_more_than_one_chunk():
    """Property: forward and backward project at most `chunk_size` positions onto the vocabulary at a time
    (the model's own head call is cut to one position), so full-vocabulary logits of the batch never exist."""
    model = tiny_llama()
    rows = []
    hook = model.lm_head.register_forward_hook(lambda _m, i, _o: rows.append(i[0].reshape(-1, i[0].shape[-1]).shape[0]))
    trainer = _trainer(model)
    trainer.chunk_size = 4
    batch = PaddedCollator()([sequence_features(s) for s in random_sequences(6, seed=7)])
    loss = trainer.compute_loss(model, batch)
    forward_calls = len(rows)
    loss.backward()
    hook.remove()
    supervised = int((batch["labels"] != -100).sum())
    chunks = -(-supervised // 4)
    assert max(rows[1:]) <= 4 and rows[0] == 6  # the model's own call: the last position of each of 6 rows
    assert forward_calls == 1 + chunks and len(rows) == 1 + 2 * chunks  # each chunk recomputed once in backward
    assert model.lm_head.weight.grad is not None
