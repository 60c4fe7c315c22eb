"""The OpenAI-compatible client against a real loopback server: both endpoints, bounded concurrency, retries
on every fault kind, a clear error after the retry budget, no retry on a rejected key."""

from __future__ import annotations

from collections import Counter

import pytest

from cotdistill.teachers.base import SamplingParams
from cotdistill.teachers.generator import CachedGenerator, Request, TeacherRequestError
from cotdistill.teachers.http import OpenAIBackend
from cotdistill.teachers.keys import ApiKey
from cotdistill.teachers.testing import FAULTS, FaultServer


def _run(backend: OpenAIBackend, prompts: list) -> tuple[dict, Counter]:
    got: dict = {}
    stats: Counter = Counter()
    requests = [Request(p, SamplingParams(max_tokens=64), 0, f"id{i}") for i, p in enumerate(prompts)]
    backend.run(requests, lambda i, c: got.__setitem__(i, c), stats)
    return got, stats


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_both_endpoints_return_the_servers_text(endpoint):
    with FaultServer(keep_bodies=True) as server:
        got, _ = _run(OpenAIBackend(server.base_url, "toy", endpoint=endpoint), ["Question: q\n(A) a\n(B) b"])
        assert "Therefore, the answer is" in got[0].text and got[0].completion_tokens > 0
        assert ("messages" in server.bodies[0]) == (endpoint == "chat")
        assert ("prompt" in server.bodies[0]) == (endpoint == "completions")


def test_requests_in_flight_never_exceed_the_concurrency_bound():
    with FaultServer(latency=0.25) as server:
        got, _ = _run(OpenAIBackend(server.base_url, "toy", concurrency=3), [f"q{i}" for i in range(12)])
        assert len(got) == 12
        assert server.max_in_flight == 3


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_kind_is_retried_until_answered(fault):
    # the timeout leaves a busy machine room to answer; only a "slow" fault passes it
    with FaultServer(fault_rate=0.5, faults=[fault], slow_seconds=3.0, seed=3) as server:
        backend = OpenAIBackend(server.base_url, "toy", timeout=2.0, max_retries=12, backoff=0.01, backoff_max=0.05)
        got, stats = _run(backend, [f"Question: {i}\n(A) a\n(B) b" for i in range(8)])
        outcomes = server.outcomes()
        assert len(got) == 8 and outcomes["ok"] == 8
        assert outcomes[fault] > 0 and stats["retries"] == outcomes[fault]  # one retry per fault, no more


def test_after_the_retry_budget_the_error_says_what_failed_and_where():
    with FaultServer(fault_rate=1.0, faults=["500"]) as server:
        backend = OpenAIBackend(server.base_url, "toy", max_retries=2, backoff=0.01)
        with pytest.raises(TeacherRequestError, match=r"gave up after 3 attempts; last: HTTP 500") as err:
            _run(backend, ["q"])
        assert server.base_url in str(err.value)
        assert server.outcomes() == {"500": 3}


def test_a_rejected_key_fails_at_once_and_the_message_hides_the_key():
    with FaultServer(api_key="right-key") as server:
        backend = OpenAIBackend(server.base_url, "toy", api_key=ApiKey("wrong-key-12345"), max_retries=5)
        with pytest.raises(TeacherRequestError, match="401") as err:
            _run(backend, ["q"])
        assert "wrong-key-12345" not in str(err.value)
        assert server.outcomes() == {"unauthorized": 1}


def test_a_failed_request_does_not_lose_the_answers_of_the_others(tmp_path):
    from cotdistill.teachers.cache import TeacherCache

    def reply(body: dict) -> str:
        return "Therefore, the answer is (A)."

    with FaultServer(reply=reply) as server:
        backend = OpenAIBackend(server.base_url, "toy", max_retries=0, backoff=0.01)
        cache = TeacherCache(tmp_path / "c.sqlite")
        gen = CachedGenerator(backend, cache)
        server.fault_rate, server.faults = 0.5, ("500",)
        with pytest.raises(TeacherRequestError, match="requests to"):
            gen.generate([f"q{i}" for i in range(10)], 1, SamplingParams())
        answered = server.outcomes()["ok"]
        assert 0 < answered < 10 and len(cache) == answered
        server.fault_rate = 0.0
        server.log.clear()
        gen.generate([f"q{i}" for i in range(10)], 1, SamplingParams())
        assert len(server.log) == 10 - answered  # only the failed ones are asked again


def test_a_server_too_slow_to_answer_never_gets_more_than_concurrency_plus_retries_requests():
    # every reply comes after the client's timeout, as from a continuous-batching server that keeps
    # generating abandoned requests: retrying each one would pile ever more work onto it
    with FaultServer(fault_rate=1.0, faults=["slow"], slow_seconds=3.0) as server:
        backend = OpenAIBackend(server.base_url, "toy", concurrency=4, timeout=0.3, max_retries=3, backoff=0.01)
        with pytest.raises(TeacherRequestError, match=r"timing out .* cannot keep up"):
            _run(backend, [f"q{i}" for i in range(20)])
        assert len(server.log) <= 4 + 3
