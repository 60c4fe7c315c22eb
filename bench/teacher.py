"""Teacher client throughput: the async client with N requests in flight vs one request at a time.

Baseline: the same OpenAIBackend with concurrency=1 (one request after another), in the same command, against
the same server. The main server is a loopback OpenAI-compatible server that adds a fixed latency per request,
like a remote API (latency-bound, not compute-bound). With --serve, the two clients are also compared against
`transformers serve` with SmolLM2-135M-Instruct (compute-bound on this CPU), printed before the last line.
No cache is used, so every request is really sent.

Usage: python bench/teacher.py [--requests 64] [--concurrency 16] [--latency 0.2] [--serve]
The last line is the throughput ratio (concurrent over sequential) on the latency server.
"""

from __future__ import annotations

import argparse
import time

from cotdistill.teachers.base import SamplingParams
from cotdistill.teachers.generator import CachedGenerator
from cotdistill.teachers.http import OpenAIBackend
from cotdistill.teachers.testing import FaultServer, transformers_server


def _throughput(url: str, model: str, prompts: list, concurrency: int, params: SamplingParams) -> tuple[float, int]:
    """Requests per second and completion tokens for one pass over the prompts, uncached."""
    gen = CachedGenerator(OpenAIBackend(url, model, concurrency=concurrency, timeout=600), cache=None)
    start = time.perf_counter()
    gen.generate(prompts, 1, params)
    elapsed = time.perf_counter() - start
    return len(prompts) / elapsed, gen.stats["completion_tokens"]


def _compare(label: str, url: str, model: str, prompts: list, concurrency: int, params: SamplingParams) -> float:
    _throughput(url, model, prompts[:2], 2, params)  # warm-up: connections, model caches
    fast, _ = _throughput(url, model, prompts, concurrency, params)
    slow, _ = _throughput(url, model, prompts, 1, params)
    print(f"{label}: {len(prompts)} requests, concurrent ({concurrency} in flight) {fast:.2f} req/s, "
          f"sequential {slow:.2f} req/s")
    return fast / slow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the latency server adds per request")
    parser.add_argument("--serve", action="store_true", help="also measure against transformers serve + SmolLM2")
    parser.add_argument("--serve-requests", type=int, default=8)
    parser.add_argument("--serve-max-tokens", type=int, default=32)
    args = parser.parse_args()

    if args.serve:
        from cotdistill.models import hf_copy_of

        folder = hf_copy_of("smollm2-135m-instruct")
        prompts = [[{"role": "user", "content": f"Give one fact about the number {i}."}]
                   for i in range(args.serve_requests)]
        params = SamplingParams(temperature=0.0, max_tokens=args.serve_max_tokens)
        with transformers_server(folder, threads=2, extra_args=["--continuous-batching"]) as url:
            ratio = _compare("transformers serve (SmolLM2-135M, continuous batching, 2 threads)", url, str(folder),
                             prompts, min(args.concurrency, args.serve_requests), params)
        print(f"transformers serve throughput ratio, concurrent / sequential: {ratio:.2f}x")

    prompts = [f"Question: item {i}\n(A) a\n(B) b" for i in range(args.requests)]
    with FaultServer(latency=args.latency) as server:
        ratio = _compare(f"latency server ({args.latency * 1000:.0f} ms per request)", server.base_url, "bench",
                         prompts, args.concurrency, SamplingParams(max_tokens=64))
    print(f"concurrent / sequential client throughput ({args.concurrency} in flight, "
          f"{args.latency * 1000:.0f} ms latency server): {ratio:.2f}x")


if __name__ == "__main__":
    main()
