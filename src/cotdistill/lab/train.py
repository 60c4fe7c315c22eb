"""A minimal training path for lab students: the student reads the question and learns the teacher's CoT.

Plain causal-LM cross-entropy on the CoT tokens only (the prompt is masked), AdamW, warmup then cosine decay,
under a wall-clock budget; greedy decoding and strict grading for accuracy. It exists to show that lab students
learn; the weighted trainer the methods share lives elsewhere.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..grading import grade
from ..records import Example, Rationale

PROMPT = "Q: {question}\nA:"
IGNORE = -100


def prompt_of(example: Example) -> str:
    return PROMPT.format(question=example.question)


def encode(tokenizer: PreTrainedTokenizerBase, example: Example, cot: str) -> tuple[list[int], list[int]]:
    """Token ids of prompt + " " + CoT + EOS, and labels that supervise only the CoT and EOS."""
    prompt = [tokenizer.bos_token_id, *tokenizer(prompt_of(example), add_special_tokens=False).input_ids]
    target = [*tokenizer(" " + cot, add_special_tokens=False).input_ids, tokenizer.eos_token_id]
    return prompt + target, [IGNORE] * len(prompt) + target


def chance_level(examples: Sequence[Example]) -> float:
    """Accuracy of guessing: uniform over the choices, or always the most common answer, whichever is higher."""
    most_common = Counter(e.answer for e in examples).most_common(1)[0][1] / len(examples)
    uniform = max((1 / len(e.choices) for e in examples if e.choices), default=0.0)
    return max(most_common, uniform)


@torch.no_grad()
def evaluate(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: Sequence[Example],
             max_new_tokens: int, batch_size: int = 64) -> tuple[float, list[str]]:
    """Greedy CoTs for `examples` and their strict accuracy."""
    model.eval()
    tokenizer.padding_side = "left"  # generation continues from the right edge of every row
    outputs: list[str] = []
    for start in range(0, len(examples), batch_size):
        batch = examples[start:start + batch_size]
        prompts = [[tokenizer.bos_token_id, *tokenizer(prompt_of(e), add_special_tokens=False).input_ids]
                   for e in batch]
        width = max(map(len, prompts))
        ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        generated = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                   do_sample=False, eos_token_id=tokenizer.eos_token_id,
                                   pad_token_id=tokenizer.pad_token_id)
        outputs += tokenizer.batch_decode(generated[:, width:], skip_special_tokens=True)
    model.train()
    correct = sum(grade(text, e).strict_correct for text, e in zip(outputs, examples))
    return correct / max(1, len(examples)), outputs


@dataclass
class TrainConfig:
    max_steps: int = 2000
    time_budget_s: float = 600.0
    batch_size: int = 32
    learning_rate: float = 2e-3
    warmup_steps: int = 50
    weight_decay: float = 0.01
    eval_every: int = 200  # steps between held-out accuracy checks on `eval_examples` questions
    eval_examples: int = 100
    log_every: int = 25
    seed: int = 0


@dataclass
class CurvePoint:
    step: int
    seconds: float
    tokens: int
    loss: float
    accuracy: float | None = None


@dataclass
class TrainResult:
    curve: list[CurvePoint] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    tokens: int = 0


def train(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
          data: Sequence[tuple[Example, Rationale]], cfg: TrainConfig,
          held_out: Sequence[Example] = (), log: Callable[[str], None] = print) -> TrainResult:
    """Fit the student to the CoTs in `data`; logs the learning curve (loss, and accuracy on `held_out`)."""
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    encoded = [encode(tokenizer, e, r.text) for e, r in data]
    max_new = max(len(ids) - labels.count(IGNORE) for ids, labels in encoded) + 8
    probe = list(held_out)[: cfg.eval_examples]
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "norm" in name else decay).append(p)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.learning_rate,
                                  betas=(0.9, 0.98))

    def lr_at(step: int) -> float:  # warmup, then cosine down to a tenth
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    result = TrainResult()
    order: list[int] = []
    started = time.perf_counter()
    window: list[float] = []
    model.train()
    for step in range(cfg.max_steps):
        if len(order) < cfg.batch_size:
            order += rng.sample(range(len(encoded)), len(encoded))
        batch = [encoded[i] for i in order[: cfg.batch_size]]
        del order[: cfg.batch_size]
        width = max(len(ids) for ids, _ in batch)
        ids = torch.tensor([ids + [tokenizer.pad_token_id] * (width - len(ids)) for ids, _ in batch])
        labels = torch.tensor([lab + [IGNORE] * (width - len(lab)) for _, lab in batch])
        mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in batch])
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        result.tokens += int(mask.sum())
        result.steps = step + 1
        window.append(loss.item())
        out_of_time = time.perf_counter() - started > cfg.time_budget_s
        last = step + 1 == cfg.max_steps or out_of_time
        if (step + 1) % cfg.log_every == 0 or last:
            point = CurvePoint(step + 1, time.perf_counter() - started, result.tokens, sum(window) / len(window))
            window = []
            if probe and ((step + 1) % cfg.eval_every == 0 or last):
                point.accuracy, _ = evaluate(model, tokenizer, probe, max_new)
            result.curve.append(point)
            acc = "" if point.accuracy is None else f"  held-out acc {point.accuracy:.3f}"
            log(f"step {point.step:5d}  {point.seconds:6.1f}s  {point.tokens:8d} tok  loss {point.loss:.4f}{acc}")
        if out_of_time:
            log(f"time budget of {cfg.time_budget_s:.0f}s reached after step {step + 1}")
            break
    result.seconds = time.perf_counter() - started
    return result
