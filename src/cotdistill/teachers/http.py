"""An OpenAI-compatible HTTP backend: async, bounded concurrency, retries with backoff and jitter.

It speaks both `/chat/completions` (messages; the server applies the model's chat template) and
`/completions` (a plain prompt), which OpenAI, vLLM, SGLang, llama.cpp's server, Ollama and `transformers
serve` all offer. Retried: HTTP 429 and 5xx (honouring Retry-After), timeouts, dropped connections and cut-off
bodies, and bodies that are not the JSON we expect. Not retried: other 4xx answers (a bad key or model name
will not get better). After the retry budget a request fails with a TeacherRequestError; the others finish
first, so their answers reach the cache. Timeouts are the exception: they share one budget per `run` call and
each halves the requests in flight, because a server that keeps generating abandoned requests is overloaded,
and retrying each of them would only add to its load.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections import Counter
from collections.abc import Sequence

import httpx

from .base import Completion
from .generator import OnResult, Request, TeacherRequestError
from .keys import ApiKey

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}


class MalformedResponse(Exception):
    """A 200 answer whose body is not a completion."""


class OpenAIBackend:
    """Requests to an OpenAI-compatible server.

    base_url: up to and including the version prefix, e.g. "https://api.openai.com/v1" or
    "http://127.0.0.1:8000/v1". endpoint: "chat" or "completions". concurrency: requests in flight at once.
    timeout: seconds for one attempt. max_retries: attempts after the first. backoff: first delay in seconds,
    doubled each retry up to backoff_max, each delay drawn uniformly from [delay/2, delay] (jitter).
    extra_body: more JSON fields for every request (e.g. {"chat_template_kwargs": {...}} for vLLM).
    """

    def __init__(self, base_url: str, model: str, *, api_key: ApiKey | None = None, endpoint: str = "chat",
                 concurrency: int = 16, timeout: float = 120.0, max_retries: int = 6, backoff: float = 0.5,
                 backoff_max: float = 30.0, extra_body: dict | None = None, seed: int | None = None):
        if endpoint not in ("chat", "completions"):
            raise ValueError(f"endpoint must be 'chat' or 'completions', got {endpoint!r}")
        if concurrency < 1 or max_retries < 0:
            raise ValueError("concurrency must be >= 1 and max_retries >= 0")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.endpoint = endpoint
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.extra_body = dict(extra_body or {})
        self._key = api_key
        self._rng = random.Random(seed)

    @property
    def cache_name(self) -> str:
        """The model as cache keys see it: extra request fields (thinking on or off, ...) change answers."""
        if not self.extra_body:
            return self.model
        return f"{self.model} {json.dumps(self.extra_body, sort_keys=True)}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/{'chat/completions' if self.endpoint == 'chat' else 'completions'}"

    # ---- the Backend protocol ------------------------------------------------------------------------------

    def run(self, requests: Sequence[Request], on_result: OnResult, stats: Counter) -> None:
        if not requests:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self._run_all(requests, on_result, stats))
            return
        # called from inside an event loop (a notebook): run ours in a thread and wait for it
        errors: list[BaseException] = []

        def target() -> None:
            try:
                asyncio.run(self._run_all(requests, on_result, stats))
            except BaseException as e:  # re-raised in the caller's thread
                errors.append(e)

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        if errors:
            raise errors[0]

    # ---- internals -----------------------------------------------------------------------------------------

    def _headers(self, request: Request) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "X-Request-Id": request.key[:32]}
        if self._key is not None:
            headers["Authorization"] = f"Bearer {self._key.reveal()}"
        return headers

    def body(self, request: Request) -> dict:
        p = request.params
        body: dict = {"model": self.model, "max_tokens": p.max_tokens, "temperature": p.temperature,
                      "top_p": p.top_p, "n": 1}
        if p.seed is not None:
            body["seed"] = p.seed
        if p.stop:
            body["stop"] = list(p.stop)
        if self.endpoint == "chat":
            prompt = request.prompt
            body["messages"] = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        else:
            if not isinstance(request.prompt, str):
                raise TeacherRequestError(
                    "the completions endpoint takes plain prompts; use endpoint 'chat' for chat messages "
                    "(the server then applies the teacher's chat template)")
            body["prompt"] = request.prompt
        body.update(self.extra_body)
        return body

    async def _run_all(self, requests: Sequence[Request], on_result: OnResult, stats: Counter) -> None:
        gate = _ShrinkingGate(self.concurrency)
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        failures: list[str] = []
        # A server that does not cancel abandoned requests (a continuous-batching `transformers serve`) keeps
        # generating them after our timeout, so retrying each one feeds it more work than it can finish. Timeouts
        # therefore share one budget for the whole call, and each halves the requests we keep in flight; past
        # the budget the call stops, so a slow server sees at most concurrency + max_retries requests.
        timeouts = _TimeoutBudget(self.max_retries, gate)
        async with httpx.AsyncClient(timeout=httpx.Timeout(self.timeout, pool=None), limits=limits) as client:

            async def one(i: int) -> None:
                async with gate:
                    try:
                        completion = await self._request(client, requests[i], stats, timeouts)
                    except TeacherRequestError as e:
                        stats["failures"] += 1
                        failures.append(str(e))
                        return
                on_result(i, completion)

            try:
                async with asyncio.TaskGroup() as group:  # an overloaded server cancels every other request
                    for i in range(len(requests)):
                        group.create_task(one(i))
            except* _Overloaded as overloaded:
                stats["failures"] += 1
                raise TeacherRequestError(str(overloaded.exceptions[0])) from None
        if failures:
            raise TeacherRequestError(
                f"{len(failures)} of {len(requests)} requests to {self.url} failed; first: {failures[0]}")

    async def _request(self, client: httpx.AsyncClient, request: Request, stats: Counter,
                       timeouts: _TimeoutBudget) -> Completion:
        body = self.body(request)
        problem = "no attempt made"
        for attempt in range(self.max_retries + 1):
            wait_at_least = 0.0
            try:
                # httpx closes the connection of an attempt that times out, so a server can notice and cancel
                response = await client.post(self.url, json=body, headers=self._headers(request))
                if response.status_code == 200:
                    return self._parse(response.content)
                problem = f"HTTP {response.status_code}: {self._redact(response.text[:200])}"
                if response.status_code not in RETRY_STATUS:
                    raise TeacherRequestError(f"{self.url} answered {problem}")
                wait_at_least = _retry_after(response.headers.get("retry-after"))
            except httpx.TimeoutException:
                problem = f"no answer within the {self.timeout:g} s timeout"
                timeouts.spend(self.url, self.timeout)
            except httpx.TransportError as e:  # refused or dropped connections, cut-off bodies
                problem = f"{type(e).__name__}: {self._redact(str(e))[:200]}"
            except MalformedResponse as e:
                problem = f"malformed answer: {e}"
            if attempt == self.max_retries:
                break
            stats["retries"] += 1
            delay = min(self.backoff_max, self.backoff * 2**attempt)
            await asyncio.sleep(max(wait_at_least, self._rng.uniform(delay / 2, delay)))
        raise TeacherRequestError(f"{self.url}: gave up after {self.max_retries + 1} attempts; last: {problem}")

    def _parse(self, content: bytes) -> Completion:
        try:
            data = json.loads(content)
            choice = data["choices"][0]
            if self.endpoint == "chat":
                text = choice["message"]["content"]
            else:
                text = choice["text"]
            if text is None:
                text = ""
            if not isinstance(text, str):
                raise TypeError("completion text is not a string")
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise MalformedResponse(f"{type(e).__name__}: {str(e)[:120]}") from None
        usage = data.get("usage") or {}
        reason = "length" if choice.get("finish_reason") == "length" else "stop"
        return Completion(text=text, finish_reason=reason, prompt_tokens=int(usage.get("prompt_tokens") or 0),
                          completion_tokens=int(usage.get("completion_tokens") or 0))

    def _redact(self, text: str) -> str:
        return self._key.redact(text) if self._key is not None else text


class _Overloaded(Exception):
    """More requests timed out than the retry budget allows: the server cannot keep up."""


class _ShrinkingGate:
    """A concurrency limit that can be lowered while requests are in flight (never below one)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._in_flight = 0
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._in_flight < self.limit)
            self._in_flight += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._changed:
            self._in_flight -= 1
            self._changed.notify_all()

    def halve(self) -> None:
        self.limit = max(1, self.limit // 2)


class _TimeoutBudget:
    """Timeouts allowed in one `run` call; each one also halves the gate's limit."""

    def __init__(self, allowed: int, gate: _ShrinkingGate):
        self.left = allowed
        self.gate = gate

    def spend(self, url: str, timeout: float) -> None:
        if self.left == 0:
            raise _Overloaded(
                f"{url}: requests keep timing out ({timeout:g} s): the server cannot keep up; raise --timeout "
                f"or lower --concurrency (now {self.gate.limit}), then rerun to resume")
        self.left -= 1
        self.gate.halve()


def _retry_after(value: str | None) -> float:
    """Seconds from a Retry-After header (only the delta-seconds form; capped at a minute)."""
    try:
        return min(60.0, max(0.0, float(value))) if value else 0.0
    except ValueError:
        return 0.0
