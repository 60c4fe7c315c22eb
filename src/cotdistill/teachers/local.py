"""A local transformers teacher backend: batched generation in this process (`generation.generate_texts`).

Chat messages are rendered with the tokenizer's own chat template (generation prompt added), so an instruct
model sees the format it was tuned on; plain prompts are used as they are. Requests are grouped by their
sampling settings and seed (one group per sample index), and each batch's answers reach the cache as soon as
the batch is done.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from ..errors import CotdistillError
from ..generation import generate_texts
from .base import Completion, Prompt
from .generator import OnResult, Request


def render_for_tokenizer(prompt: Prompt, tokenizer) -> str:
    """A prompt as text for this tokenizer: chat messages through its chat template."""
    if isinstance(prompt, str):
        return prompt
    if getattr(tokenizer, "chat_template", None) is None:
        raise CotdistillError("chat prompts need a tokenizer with a chat template (or use prompt_format='plain')")
    return tokenizer.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)


class LocalBackend:
    """Generates with a loaded transformers model and tokenizer; `model` is the name used in cache keys."""

    def __init__(self, model, tokenizer, *, name: str, batch_size: int = 16):
        self.hf_model = model
        self.tokenizer = tokenizer
        self.model = name
        self.batch_size = batch_size

    def run(self, requests: Sequence[Request], on_result: OnResult, stats: Counter) -> None:
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, r in enumerate(requests):
            p = r.params
            groups[(p.temperature, p.top_p, p.max_tokens, p.stop, p.seed)].append(i)
        for (temperature, top_p, max_tokens, stop, seed), indices in groups.items():
            texts = [render_for_tokenizer(requests[i].prompt, self.tokenizer) for i in indices]
            lengths = [len(self.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]

            def on_batch(rows: list[int], results: list, indices: list[int] = indices,
                         lengths: list[int] = lengths) -> None:
                for row, gens in zip(rows, results):
                    g = gens[0]
                    on_result(indices[row], Completion(text=g.text, finish_reason=g.finish_reason,
                                                       prompt_tokens=lengths[row], completion_tokens=g.new_tokens))

            generate_texts(self.hf_model, self.tokenizer, texts, max_new_tokens=max_tokens, stop=stop,
                           batch_size=self.batch_size, num_samples=1, temperature=temperature, top_p=top_p,
                           seed=seed, on_batch=on_batch)


def load_local_backend(model: str, *, batch_size: int = 16, device: str = "auto", dtype: str = "auto") -> LocalBackend:
    """A LocalBackend for a model folder, hub name, .gguf file or alias (as students are loaded)."""
    from ..config import StudentConfig
    from ..models import load_student

    hf_model, tokenizer = load_student(StudentConfig(model=model, device=device, dtype=dtype))
    hf_model.eval()
    return LocalBackend(hf_model, tokenizer, name=model, batch_size=batch_size)
