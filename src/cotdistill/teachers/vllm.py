"""vLLM offline as a teacher backend (GPU machines; `pip install 'cotdistill[vllm]'`).

vLLM is imported only when this backend is built, so the rest of the package works without it. Requests are
grouped by sampling settings and seed and handed to one `LLM.chat` / `LLM.generate` call per group, which
vLLM batches continuously; chat messages go through the model's chat template inside vLLM.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from ..errors import CotdistillError
from .base import Completion
from .generator import OnResult, Request


def _import_vllm():
    try:
        import vllm
    except ImportError:
        raise CotdistillError(
            "the vllm backend needs vLLM on a GPU machine: pip install 'cotdistill[vllm]' "
            "(or serve the model with `vllm serve` and use the OpenAI-compatible backend)") from None
    return vllm


class VllmBackend:
    """Offline generation with `vllm.LLM`; `llm_kwargs` go to its constructor (tensor_parallel_size, ...)."""

    def __init__(self, model: str, *, name: str | None = None, **llm_kwargs):
        self._vllm = _import_vllm()
        self.model = name or model
        self.llm = self._vllm.LLM(model=model, **llm_kwargs)

    def run(self, requests: Sequence[Request], on_result: OnResult, stats: Counter) -> None:
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, r in enumerate(requests):
            p = r.params
            groups[(p.temperature, p.top_p, p.max_tokens, p.stop, p.seed, isinstance(r.prompt, str))].append(i)
        for (temperature, top_p, max_tokens, stop, seed, plain), indices in groups.items():
            sampling = self._vllm.SamplingParams(n=1, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                                                 stop=list(stop) or None, seed=seed)
            prompts = [requests[i].prompt for i in indices]
            outs = (self.llm.generate(prompts, sampling, use_tqdm=False) if plain
                    else self.llm.chat(prompts, sampling, use_tqdm=False))
            for i, out in zip(indices, outs):
                o = out.outputs[0]
                on_result(i, Completion(text=o.text, finish_reason="length" if o.finish_reason == "length" else "stop",
                                        prompt_tokens=len(out.prompt_token_ids or []),
                                        completion_tokens=len(o.token_ids)))
