"""The teacher cache: nothing asked twice, n samples as distinct requests, truncated ones regenerated alone,
safe under concurrent writer processes, usage accounted per stage."""

from __future__ import annotations

import multiprocessing

from cotdistill.teachers.base import Completion, SamplingParams
from cotdistill.teachers.cache import TeacherCache, request_key
from cotdistill.teachers.generator import CachedGenerator
from cotdistill.teachers.http import OpenAIBackend
from cotdistill.teachers.testing import FaultServer


def _generator(server: FaultServer, tmp_path, concurrency: int = 4) -> CachedGenerator:
    backend = OpenAIBackend(server.base_url, "toy", concurrency=concurrency, timeout=5, backoff=0.01)
    return CachedGenerator(backend, TeacherCache(tmp_path / "cache.sqlite"))


def test_a_rerun_sends_no_request_it_already_made(tmp_path):
    with FaultServer() as server:
        gen = _generator(server, tmp_path)
        prompts = [f"Question: {i}\n(A) x\n(B) y" for i in range(6)]
        first = gen.generate(prompts, 2, SamplingParams(temperature=0.7))
        sent = len(server.log)
        again = _generator(server, tmp_path).generate(prompts, 2, SamplingParams(temperature=0.7))
        assert sent == 12 and len(server.log) == sent  # the second run was answered from the cache alone
        assert [[c.text for c in cs] for cs in again] == [[c.text for c in cs] for cs in first]


def test_n_samples_are_separate_requests_with_their_own_seed_and_more_samples_cost_only_the_new_ones(tmp_path):
    with FaultServer(keep_bodies=True) as server:
        gen = _generator(server, tmp_path)
        gen.generate(["Question: pick\n(A) a\n(B) b"], 3, SamplingParams(temperature=0.9, seed=5))
        seeds = [b["seed"] for b in server.bodies]
        assert len(seeds) == 3 and len(set(seeds)) == 3 and all(b["n"] == 1 for b in server.bodies)
        gen.generate(["Question: pick\n(A) a\n(B) b"], 5, SamplingParams(temperature=0.9, seed=5))
        assert len(server.bodies) == 5  # samples 3 and 4 only
        assert len({r.request_id for r in server.log}) == 5


def _short_or_long(body: dict) -> str:
    text = body["messages"][-1]["content"]
    words = 3 if "short" in text else 30
    return " ".join(["word"] * (words - 1) + ["end."])


def test_raising_max_tokens_regenerates_only_the_truncated_completions(tmp_path):
    with FaultServer(reply=_short_or_long) as server:
        gen = _generator(server, tmp_path)
        prompts = ["a short one", "a long one", "another short", "another long"]
        first = gen.generate(prompts, 1, SamplingParams(max_tokens=10))
        assert [cs[0].finish_reason for cs in first] == ["stop", "length", "stop", "length"]
        server.log.clear()
        second = gen.generate(prompts, 1, SamplingParams(max_tokens=50))
        assert len(server.log) == 2  # only the two cut-off completions were asked again
        assert [cs[0].finish_reason for cs in second] == ["stop"] * 4
        assert second[0][0].text == first[0][0].text


def _writer(path: str, worker: int, count: int) -> None:
    cache = TeacherCache(path)
    for i in range(count):
        key = f"shared-{i}" if i % 2 else f"own-{worker}-{i}"  # half the keys are written by every process
        cache.put(key, 16, "m", 0, {"i": i}, Completion(text=f"{worker}:{i}", completion_tokens=1))
        cache.add_usage("generate", {"requests": 1})


def test_concurrent_writer_processes_neither_fail_nor_duplicate(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    TeacherCache(path)
    procs = [multiprocessing.Process(target=_writer, args=(path, w, 150)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    cache = TeacherCache(path)
    assert len(cache) == 4 * 75 + 75  # own keys per worker, shared keys once
    assert cache.usage()["generate"]["requests"] == 600
    assert cache.get("shared-1", 16).text.endswith(":1")


def test_usage_is_accounted_per_stage(tmp_path):
    with FaultServer() as server:
        gen = _generator(server, tmp_path)
        with gen.accounting("generate") as counts:
            gen.generate(["Question: a\n(A) x\n(B) y"], 2, SamplingParams())
        with gen.accounting("rectify"):
            gen.generate(["Question: a\n(A) x\n(B) y"], 3, SamplingParams())
    usage = gen.cache.usage()
    assert counts["requests"] == 2 and usage["generate"]["requests"] == 2
    assert usage["rectify"] == {**usage["rectify"], "requests": 1, "cached": 2}
    assert usage["generate"]["completion_tokens"] > 0


def test_the_key_covers_model_prompt_sampling_and_sample_index():
    base = request_key("m", "p", SamplingParams(), 0)
    assert base == request_key("m", "p", SamplingParams(), 0)
    assert len({base, request_key("m2", "p", SamplingParams(), 0), request_key("m", "q", SamplingParams(), 0),
                request_key("m", "p", SamplingParams(temperature=0.5), 0), request_key("m", "p", SamplingParams(), 1),
                request_key("m", [{"role": "user", "content": "p"}], SamplingParams(), 0)}) == 6


def test_extra_request_fields_are_part_of_the_key(tmp_path):
    with FaultServer() as server:
        cache = TeacherCache(tmp_path / "c.sqlite")
        plain = CachedGenerator(OpenAIBackend(server.base_url, "toy"), cache)
        thinking = CachedGenerator(OpenAIBackend(server.base_url, "toy", extra_body={"think": True}), cache)
        plain.generate(["q"], 1, SamplingParams())
        thinking.generate(["q"], 1, SamplingParams())
        assert len(server.log) == 2 and len(cache) == 2
