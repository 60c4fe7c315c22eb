"""EDIT's stage-2 batches count pairs and never split one: a batch of B pairs is the 2B sequences of those
pairs in one forward pass, and an epoch takes pairs / B optimizer steps (as EDIT's own trainer does)."""

from __future__ import annotations

import math
import random
from collections import Counter

from train_util import VOCAB, tiny_llama

from cotdistill.methods.base import TrainingStage
from cotdistill.records import WeightedSequence
from cotdistill.train.trainer import TrainSettings, stage_trainer


def pair_sequences(pairs: int, one_sided: int, seed: int = 0) -> list[WeightedSequence]:
    """`pairs` two-sided groups and `one_sided` groups with a single sequence (a side KRSL dropped), plus two
    ungrouped sequences; each sequence's tokens are unique, so a batch row names its sequence."""
    rng = random.Random(seed)
    out = []

    def seq(name: str, group: str) -> WeightedSequence:
        n = len(out)
        target = [rng.randrange(3, VOCAB) for _ in range(rng.randint(2, 6))]
        return WeightedSequence(id=name, prompt_ids=[3 + n % 50, 3 + n // 50, rng.randrange(3, VOCAB)],
                                target_ids=target, target_weights=[1.0] * len(target), group=group)

    for p in range(pairs):
        out.append(seq(f"p{p}/chosen", f"p{p}"))
        out.append(seq(f"p{p}/rejected", f"p{p}"))
    for p in range(one_sided):
        out.append(seq(f"q{p}/chosen", f"q{p}"))
    out += [seq("alone0", ""), seq("alone1", "")]
    return out


def test_every_batch_holds_both_sides_of_its_pairs_and_an_epoch_takes_groups_over_b_steps(tmp_path):
    seqs = pair_sequences(pairs=9, one_sided=2)
    groups = 9 + 2 + 2  # an ungrouped sequence is a group of its own
    stage = TrainingStage("krsl", seqs, epochs=1, extra={"batch_size": 4})  # 4 pairs per optimizer step
    settings = TrainSettings(batch_size=4, seed=0, save_steps=10_000, logging_steps=1)
    trainer = stage_trainer(tiny_llama(), None, stage, settings, tmp_path / "stage")
    by_tokens = {tuple(s.prompt_ids + s.target_ids): s for s in seqs}
    size = Counter(s.group or s.id for s in seqs)
    seen = Counter()
    for batch in trainer.get_train_dataloader():
        rows = [tuple(r[m.bool()].tolist()) for r, m in zip(batch["input_ids"], batch["attention_mask"])]
        in_batch = Counter(by_tokens[r].group or by_tokens[r].id for r in rows)
        assert all(n == size[g] for g, n in in_batch.items()), in_batch  # no pair split across batches
        assert len(in_batch) <= 4 and len(rows) == sum(in_batch.values())
        seen.update(in_batch)
    assert seen == size  # every sequence once per epoch
    trainer.train()
    assert trainer.state.global_step == math.ceil(groups / 4)


def test_the_effective_batch_counts_pairs_across_micro_batches(tmp_path):
    """B pairs per optimizer step with 2 pairs per forward pass: gradient accumulation of 2, pairs / B steps."""
    seqs = pair_sequences(pairs=12, one_sided=0)
    stage = TrainingStage("krsl", seqs[:-2], epochs=2, extra={"batch_size": 4})
    trainer = stage_trainer(tiny_llama(), None, stage, TrainSettings(batch_size=2, seed=0, save_steps=10_000),
                            tmp_path / "stage")
    assert trainer.args.gradient_accumulation_steps == 2
    trainer.train()
    assert trainer.state.global_step == 2 * math.ceil(12 / 4)
