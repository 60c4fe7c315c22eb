"""Train a from-scratch student on clean lab CoTs of one family and report held-out accuracy against chance.

    python -m cotdistill.lab.demo_train --family web_of_lies --preset lab-tiny --minutes 10

Prints the learning curve (loss, and accuracy on held-out questions of the training difficulty), then the
final accuracy on the whole held-out set, the chance level and the time taken.
"""

from __future__ import annotations

import argparse
import time

import torch

from ..errors import CotdistillError
from .cli import _knobs
from .families import FAMILIES
from .generate import generate_examples
from .students import SCRATCH_PRESETS, build_student
from .teacher import ScriptedTeacher
from .train import TrainConfig, chance_level, evaluate, train


def run(family: str, preset: str, difficulty: dict[str, int], train_n: int, test_n: int, cfg: TrainConfig,
        out: str | None = None) -> dict[str, float]:
    """The whole demo; returns accuracy, chance and seconds."""
    started = time.perf_counter()
    train_set = generate_examples(family, train_n, cfg.seed, difficulty)
    test_set = generate_examples(family, test_n, cfg.seed + 1000, difficulty, split="test",
                                 exclude=[e.question for e in train_set])
    cots = [r[0] for r in ScriptedTeacher(seed=cfg.seed).solve(train_set)]
    model, tokenizer = build_student(preset, [e.question for e in train_set] + [r.text for r in cots], cfg.seed)
    params = sum(p.numel() for p in model.parameters())
    print(f"{family} {difficulty or '(default difficulty)'}: {len(train_set)} training CoTs, "
          f"{len(test_set)} held-out questions; student {preset} with {params / 1e6:.2f}M parameters, "
          f"vocabulary {len(tokenizer)}")
    result = train(model, tokenizer, list(zip(train_set, cots)), cfg, held_out=test_set)
    longest = max(len(tokenizer(r.text).input_ids) for r in cots) + 8
    accuracy, outputs = evaluate(model, tokenizer, test_set, longest)
    chance = chance_level(test_set)
    seconds = time.perf_counter() - started
    print(f"example held-out CoT: {outputs[0].strip()}")
    print(f"held-out accuracy {accuracy:.3f} (chance {chance:.3f}) after {result.steps} steps, "
          f"{result.tokens} tokens, {result.seconds:.0f}s training, {seconds:.0f}s in all")
    if out:
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    return {"accuracy": accuracy, "chance": chance, "seconds": seconds, "train_seconds": result.seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cotdistill.lab.demo_train", description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="web_of_lies", choices=sorted(FAMILIES))
    parser.add_argument("--preset", default="lab-tiny", choices=sorted(SCRATCH_PRESETS))
    parser.add_argument("--difficulty", nargs="*", default=[], metavar="KNOB=INT")
    parser.add_argument("--train-n", type=int, default=4000)
    parser.add_argument("--test-n", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=10.0, help="wall-clock budget for training")
    parser.add_argument("--max-steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="save the trained student and tokenizer here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        difficulty = _knobs([f"{args.family}.{k}" for k in args.difficulty]).get(args.family, {})
        cfg = TrainConfig(max_steps=args.max_steps, time_budget_s=args.minutes * 60, batch_size=args.batch_size,
                          learning_rate=args.lr, seed=args.seed)
        run(args.family, args.preset, difficulty, args.train_n, args.test_n, cfg, args.out)
    except CotdistillError as e:
        parser.exit(2, f"error: {e}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
