"""Batched text generation with a transformers model: left padding, stop strings, n samples per prompt."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from tqdm import tqdm
from transformers import StoppingCriteria

from .grading import answer_sentence_end


@dataclass(frozen=True)
class Generated:
    text: str
    finish_reason: str  # "stop" (EOS or a stop string) or "length"
    new_tokens: int


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Text up to the first stop string, and whether one was found."""
    cut = min((i for s in stop if (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class _Watch(StoppingCriteria):
    """Called once per decoding step: advances a token progress bar and, with `stop_after_answer`, ends each
    row once it has finished the sentence that states its answer (the rest would be ignored by grading)."""

    def __init__(self, tokenizer, start: int, bar: tqdm | None, stop_after_answer: bool):
        self.tokenizer, self.start, self.bar, self.stop_after_answer = tokenizer, start, bar, stop_after_answer
        self.finished = 0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        if self.stop_after_answer:
            texts = self.tokenizer.batch_decode(input_ids[:, self.start :], skip_special_tokens=True)
            done = torch.tensor([answer_sentence_end(t) is not None for t in texts], device=input_ids.device)
            self.finished = max(self.finished, int(done.sum()))
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(answered=f"{self.finished}/{input_ids.shape[0]}")
        return done


@torch.inference_mode()
def generate_texts(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 256,
    stop: Sequence[str] = (),
    batch_size: int = 16,
    num_samples: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
    on_batch: Callable[[list[int], list[list[Generated]]], None] | None = None,
    stop_after_answer: bool = False,
    progress: bool = False,
) -> list[list[Generated]]:
    """Continue each prompt; returns num_samples generations per prompt, in prompt order.

    Prompts are grouped by length so that a batch carries little padding, and padded on the left so that every
    row's continuation starts at the same position. `on_batch(indices, results)` is called after each batch,
    which lets a caller journal finished work before the next batch starts. `stop_after_answer` ends each
    sequence after the sentence that states its answer ("... the answer is (B).") and cuts its text there;
    `progress` shows a bar of generated tokens and answered sequences inside each batch (stderr).
    """
    if seed is not None:
        torch.manual_seed(seed)
    sampling = temperature > 0 and num_samples >= 1
    device = next(model.parameters()).device
    # An encoder-decoder reads the prompt with the tokenizer's own special tokens (as methods.encode trains it)
    # and returns decoder ids that start with the decoder start token; a causal LM continues the prompt.
    encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
    previous_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
    results: list[list[Generated] | None] = [None] * len(prompts)
    eos_ids = model.generation_config.eos_token_id
    eos_ids = set(eos_ids if isinstance(eos_ids, list) else [eos_ids]) if eos_ids is not None else set()
    try:
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            enc = tokenizer(
                [prompts[i] for i in indices], return_tensors="pt", padding=True, add_special_tokens=encoder_decoder
            ).to(device)
            start_at = 1 if encoder_decoder else enc["input_ids"].shape[1]
            bar = tqdm(total=max_new_tokens, desc=f"batch {start // batch_size + 1}/{-(-len(order) // batch_size)}",
                       unit="tok", leave=False) if progress else None
            watch = _Watch(tokenizer, start_at, bar, stop_after_answer)
            kwargs = dict(max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id, stopping_criteria=[watch])
            if stop:
                kwargs.update(stop_strings=list(stop), tokenizer=tokenizer)
            if sampling:
                kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, num_return_sequences=num_samples)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            try:
                out = model.generate(**enc, **kwargs)
            finally:
                if bar is not None:
                    bar.close()
            new = out[:, start_at:]
            per_prompt = num_samples if sampling else 1
            batch_results = []
            for row, index in enumerate(indices):
                gens = []
                for k in range(per_prompt):
                    ids = new[row * per_prompt + k].tolist()
                    length = next((j for j, t in enumerate(ids) if t in eos_ids), None)
                    hit_eos = length is not None
                    ids = ids[: length if hit_eos else len(ids)]
                    while ids and ids[-1] == tokenizer.pad_token_id and not hit_eos:
                        ids.pop()
                    text, hit_stop = cut_at_stop(tokenizer.decode(ids, skip_special_tokens=True), stop)
                    answered = answer_sentence_end(text) if stop_after_answer else None
                    if answered is not None:
                        text = text[:answered]
                    reason = "stop" if hit_eos or hit_stop or answered is not None or len(ids) < max_new_tokens \
                        else "length"
                    gens.append(Generated(text=text, finish_reason=reason, new_tokens=len(ids)))
                if not sampling and num_samples > 1:
                    gens = gens * num_samples  # greedy decoding gives the same text every time
                results[index] = gens
                batch_results.append(gens)
            if on_batch:
                on_batch(indices, batch_results)
    finally:
        tokenizer.padding_side = previous_side
    return results  # type: ignore[return-value]
