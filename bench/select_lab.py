"""Lab check of MoRSD's RD ranking and CoPeD's CAW direction against rationales known to be spurious.

The scripted teacher writes some CoTs that reach the right answer through a broken step ("spurious"): exactly
the noisy rationales both methods aim to turn down. A lab student is warmed up by Std-CoT on every correct CoT
(as the pipeline's Std-CoT baseline would be), then:
  MoRSD: per question, the lowest-RD candidate is kept; we report the share of spurious rationales kept, for low
         RD, high RD and a random pick among the same candidates (the named baseline).
  CoPeD: each correct CoT's (rationale, answer) mean NLLs go through the CAW weights in shuffled batches; we
         report the mean weight on spurious and on clean CoTs for direction -1 and +1.
Also scores RD with the untrained student (scorer "base"), which for a from-scratch student is noise.

    OMP_NUM_THREADS=2 PYTHONPATH=src python bench/select_lab.py
Last line: spurious share kept by low-RD MoRSD over the share kept by random selection (lower is better).
"""

from __future__ import annotations

import argparse
import random
import time
from collections import defaultdict

import torch

from cotdistill.lab import generate_examples
from cotdistill.lab.students import build_student
from cotdistill.lab.teacher import ScriptedTeacher
from cotdistill.methods import REGISTRY, MethodInputs
from cotdistill.methods.coped import coped_instance_weights
from cotdistill.methods.encode import ANSWER
from cotdistill.select import SelectionConfig, select_rationales

IGNORE = -100


def _batch(seqs, pad: int):
    width = max(len(s.prompt_ids) + len(s.target_ids) for s in seqs)
    ids, labels, mask, segs = [], [], [], []
    for s in seqs:
        row = s.prompt_ids + s.target_ids
        n = width - len(row)
        ids.append(row + [pad] * n)
        labels.append([IGNORE] * len(s.prompt_ids) + s.target_ids + [IGNORE] * n)
        seg = s.target_segments or [0] * len(s.target_ids)
        segs.append([-1] * len(s.prompt_ids) + seg + [-1] * n)
        mask.append([1] * len(row) + [0] * n)
    return torch.tensor(ids), torch.tensor(labels), torch.tensor(mask), torch.tensor(segs)


def warm_up(model, seqs, pad: int, steps: int, batch_size: int, lr: float, seed: int) -> list[float]:
    """Plain Std-CoT cross-entropy on the sequences (a stand-in for the shared trainer, kept minimal)."""
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 30) * max(0.1, 1 - s / steps))
    model.train()
    losses = []
    for _ in range(steps):
        ids, labels, mask, _ = _batch(rng.sample(seqs, batch_size), pad)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def segment_losses(model, seqs, pad: int, batch_size: int = 32) -> torch.Tensor:
    """[N, 2]: each sequence's mean NLL over rationale tokens and over answer tokens (0 for an empty segment)."""
    out = []
    for start in range(0, len(seqs), batch_size):
        ids, labels, mask, segs = _batch(seqs[start:start + batch_size], pad)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels[:, 1:], ignore_index=IGNORE,
                                                reduction="none")
        seg = segs[:, 1:]
        parts = []
        for k in (0, ANSWER):
            m = (seg == k).float()
            parts.append((nll * m).sum(1) / m.sum(1).clamp(min=1))
        out.append(torch.stack(parts, 1))
    return torch.cat(out)


def spurious_share(kept, is_spurious) -> float:
    return sum(is_spurious[r.id] for r in kept) / max(1, len(kept))


def pairwise_win(rd: dict[str, float], by_id, is_spurious) -> float:
    """Over (clean, spurious) candidate pairs of the same question: how often the clean one has the lower RD."""
    groups = defaultdict(lambda: ([], []))
    for rid, value in rd.items():
        groups[by_id[rid].example_id][is_spurious[rid]].append(value)
    wins = pairs = 0.0
    for clean, spurious in groups.values():
        for c in clean:
            for sp in spurious:
                wins += 1.0 if c < sp else 0.5 if c == sp else 0.0
                pairs += 1
    return wins / max(1.0, pairs)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--family", default="web_of_lies")
    p.add_argument("--difficulty", nargs="*", default=[], help="family knobs, e.g. people=3")
    p.add_argument("--questions", type=int, default=400)
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--spurious-rate", type=float, default=0.3)
    p.add_argument("--mistake-rate", type=float, default=0.2)
    p.add_argument("--preset", default="lab-tiny")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--scored", type=int, default=150, help="questions whose candidates are scored")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    started = time.perf_counter()

    knobs = {k: int(v) for k, v in (item.split("=", 1) for item in args.difficulty)}
    examples = generate_examples(args.family, args.questions, seed=args.seed, difficulty=knobs or None)
    teacher = ScriptedTeacher(mistake_rate=args.mistake_rate, spurious_rate=args.spurious_rate, seed=args.seed)
    rationales = [r for per in teacher.solve(examples, n=args.samples) for r in per]
    correct = [r for r in rationales if r.correct]
    is_spurious = {r.id: r.error_type == "spurious" for r in rationales}
    model, tokenizer = build_student(args.preset, [e.question for e in examples] + [r.text for r in rationales],
                                     seed=args.seed)
    pad = tokenizer.pad_token_id
    std_cot = REGISTRY["morsd"].build(MethodInputs(examples=examples, rationales=correct, tokenizer=tokenizer), {})
    seqs = std_cot[0].sequences

    # questions with both a clean and a spurious correct candidate: where selection can matter
    by_q = defaultdict(list)
    for r in correct:
        by_q[r.example_id].append(r)
    mixed = [q for q, rs in by_q.items() if 0 < sum(is_spurious[r.id] for r in rs) < len(rs)][: args.scored]
    pool = [r for q in mixed for r in by_q[q]]
    config = SelectionConfig(top_k=1, diversity_threshold=0.9, batch_size=16)

    log = lambda msg: print(f"[{time.perf_counter() - started:.0f}s] {msg}", flush=True)  # noqa: E731
    log(f"data ready: {len(seqs)} Std-CoT sequences, {len(pool)} candidates of {len(mixed)} mixed questions")
    base_low = select_rationales(model, tokenizer, examples, pool, config)
    log("RD with the untrained student done")
    curve = warm_up(model, seqs, pad, args.steps, 32, 3e-3, args.seed)
    log("warm-up done")
    low = select_rationales(model, tokenizer, examples, pool, config)
    high = select_rationales(model, tokenizer, examples, pool, config.model_copy(update={"prefer": "high"}))
    candidates = [row["rationale_id"] for row in low.table if "rd" in row]
    by_id = {r.id: r for r in pool}
    cand_by_q = defaultdict(list)
    for rid in candidates:
        cand_by_q[by_id[rid].example_id].append(is_spurious[rid])
    random_share = sum(sum(v) / len(v) for v in cand_by_q.values()) / len(cand_by_q)  # expected share of a random pick

    print(f"{args.family} {knobs}: {len(examples)} questions x {args.samples} CoTs, {len(correct)} correct "
          f"({sum(is_spurious[r.id] for r in correct)} spurious); warm-up {args.steps} steps, loss "
          f"{sum(curve[:10]) / 10:.3f} -> {sum(curve[-10:]) / 10:.3f}")
    print(f"MoRSD on {len(cand_by_q)} mixed questions ({len(candidates)} candidates after accuracy+diversity):")
    print(f"  spurious share kept: random {random_share:.3f} | low RD (base student) {spurious_share(base_low.kept, is_spurious):.3f}"
          f" | low RD (warm) {spurious_share(low.kept, is_spurious):.3f} | high RD (warm) "
          f"{spurious_share(high.kept, is_spurious):.3f}")
    rd = {row["rationale_id"]: row["rd"] for row in low.table if "rd" in row}
    base_rd = {row["rationale_id"]: row["rd"] for row in base_low.table if "rd" in row}
    for name, table in (("base", base_rd), ("warm", rd)):
        print(f"  P(clean RD < spurious RD), pairs within a question ({name} student; chance 0.5): "
              f"{pairwise_win(table, by_id, is_spurious):.3f}")
    for name, flag in (("clean", False), ("spurious", True)):
        vals = sorted(v for k, v in rd.items() if is_spurious[k] == flag)
        print(f"  median RD (warm) of {name} candidates: {vals[len(vals) // 2]:.3f} (n={len(vals)})")

    losses = segment_losses(model, seqs, pad)
    spurious_mask = torch.tensor([is_spurious[s.id.split("/", 1)[1]] for s in seqs])
    order = torch.randperm(len(seqs), generator=torch.Generator().manual_seed(args.seed))
    print(f"CoPeD CAW (batches of 16, T=1, mean normalisation) on {len(seqs)} correct CoTs; mean (rationale, answer) "
          f"NLL clean {losses[~spurious_mask].mean(0).tolist()} spurious {losses[spurious_mask].mean(0).tolist()}")
    for direction in (-1.0, 1.0):
        weights = torch.empty(len(seqs))
        for start in range(0, len(seqs), 16):
            idx = order[start:start + 16]
            weights[idx] = coped_instance_weights(losses[idx], direction=direction)
        print(f"  direction {direction:+.0f}: mean weight clean {weights[~spurious_mask].mean():.3f}, "
              f"spurious {weights[spurious_mask].mean():.3f}")
    print(f"({time.perf_counter() - started:.0f}s, threads {torch.get_num_threads()})")
    print(f"spurious share kept, low-RD MoRSD / random selection: "
          f"{spurious_share(low.kept, is_spurious) / random_share:.2f}")


if __name__ == "__main__":
    main()
