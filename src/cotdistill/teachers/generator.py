"""A `TextGenerator` over any backend, through the cache: each (prompt, sample) is asked for at most once.

Backends (HTTP, local transformers, vLLM) only answer single requests: one prompt, one sample, its own seed.
Asking for n samples makes n requests with sample indices 0..n-1 (servers such as `transformers serve`
ignore `n`), so each sample has its own cache row and a rerun that asks for more samples pays only for the
new ones. Identical requests within one call are sent once. Results are stored as they arrive, so a crash loses at most the requests in flight.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Protocol

from tqdm import tqdm

from ..errors import CotdistillError
from .base import Completion, Prompt, SamplingParams
from .cache import USAGE_FIELDS, TeacherCache, request_identity, request_key


class TeacherRequestError(CotdistillError):
    """A teacher request that still failed after its retry budget (or failed in a way retrying cannot fix)."""


@dataclass(frozen=True)
class Request:
    """One prompt, one sample. `params.seed` is already the per-sample seed."""

    prompt: Prompt
    params: SamplingParams
    sample_index: int
    key: str = ""  # the cache key, also sent to servers as a request id for their logs


OnResult = Callable[[int, Completion], None]


class Backend(Protocol):
    """Something that answers requests: `run` calls `on_result(i, completion)` as each request i finishes.

    It raises TeacherRequestError at the end if some requests could not be answered; the others have been
    delivered by then. `stats` gets "retries" and "failures" added.
    """

    model: str

    def run(self, requests: Sequence[Request], on_result: OnResult, stats: Counter) -> None: ...


def sample_seed(base: int | None, sample_index: int) -> int:
    """The seed of sample i: distinct per sample so that n samples differ, and stable across runs."""
    return ((base or 0) * 1_000_003 + sample_index) % (2**31 - 1)


class CachedGenerator:
    """`TextGenerator` that looks every (prompt, sample) up in the cache and sends only the misses."""

    def __init__(self, backend: Backend, cache: TeacherCache | None = None):
        self.backend = backend
        self.cache = cache
        self.model = backend.model
        self.cache_name = getattr(backend, "cache_name", backend.model)  # what cache keys and stage hashes see
        self.stats: Counter = Counter()
        self._stage: str | None = None
        self._flushed: Counter = Counter()  # the part of `stats` already added to the cache's usage table

    def request(self, prompt: Prompt, params: SamplingParams, sample_index: int) -> Request:
        p = replace(params, seed=sample_seed(params.seed, sample_index))
        return Request(prompt, p, sample_index, request_key(self.cache_name, prompt, p, sample_index))

    def generate(self, prompts: Sequence[Prompt], n: int, params: SamplingParams) -> list[list[Completion]]:
        """n completions per prompt (samples 0..n-1), in prompt order."""
        flat = self.generate_samples([p for p in prompts for _ in range(n)], list(range(n)) * len(prompts), params)
        return [flat[k * n : (k + 1) * n] for k in range(len(prompts))]

    def generate_samples(self, prompts: Sequence[Prompt], sample_indices: Sequence[int],
                         params: SamplingParams) -> list[Completion]:
        """One completion per (prompt, sample index); identical requests in one call are sent once."""
        requests = [self.request(p, params, i) for p, i in zip(prompts, sample_indices, strict=True)]
        results: dict[str, Completion] = {}
        todo: list[Request] = []
        queued: set[str] = set()
        for r in requests:
            if r.key in results or r.key in queued:
                continue
            hit = self.cache.get(r.key, r.params.max_tokens) if self.cache else None
            if hit is not None:
                results[r.key] = hit
                self.stats["cached"] += 1
            else:
                todo.append(r)
                queued.add(r.key)
        if todo:
            # one progress line per call on stderr: what the stage has asked for and what has come back
            bar = tqdm(total=len(todo), desc=f"[{self._stage or 'teacher'}] requests", unit="req", leave=False,
                       file=sys.stderr)
            bar.set_postfix(cached=len(requests) - len(todo), refresh=False)

            def on_result(j: int, completion: Completion) -> None:
                r = todo[j]
                if self.cache is not None and completion.finish_reason != "error":
                    identity = request_identity(self.cache_name, r.prompt, r.params, r.sample_index)
                    self.cache.put(r.key, r.params.max_tokens, self.model, r.sample_index, identity, completion)
                results[r.key] = completion
                self.stats["requests"] += 1
                self.stats["prompt_tokens"] += completion.prompt_tokens
                self.stats["completion_tokens"] += completion.completion_tokens
                bar.update(1)

            try:
                self.backend.run(todo, on_result, self.stats)
            finally:
                bar.close()
                self._flush_usage()
        return [results[r.key] for r in requests]

    @contextmanager
    def accounting(self, stage: str) -> Iterator[Counter]:
        """Count this block's usage under `stage` in the cache's usage table (written after every backend
        call); yields a counter that holds the block's usage once the block ends."""
        self._flush_usage()
        previous, self._stage = self._stage, stage
        before = Counter(self.stats)
        delta: Counter = Counter()
        try:
            yield delta
        finally:
            self._flush_usage()
            delta.update({k: self.stats[k] - before[k] for k in USAGE_FIELDS})
            self._stage = previous

    def _flush_usage(self) -> None:
        """Write usage accumulated since the last flush to the cache's table, under the current stage."""
        pending = {k: self.stats[k] - self._flushed[k] for k in USAGE_FIELDS}
        if self.cache is not None and self._stage is not None and any(pending.values()):
            self.cache.add_usage(self._stage, pending)
        self._flushed = Counter({k: self.stats[k] for k in USAGE_FIELDS})
