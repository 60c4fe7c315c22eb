"""End to end on real models: `transformers serve` with SmolLM2-135M-Instruct on 127.0.0.1 runs generate ->
grade -> rectify -> corrupt -> pair on a few BBH questions; the local transformers backend applies the chat
template and caches. SmolLM2 is weak: these tests check that records are well-formed and counted, not that the
model is right."""

from __future__ import annotations

from collections import Counter

import pytest

from cotdistill.config import DataConfig
from cotdistill.data import load_examples
from cotdistill.records import DualPair, Rationale, read_jsonl
from cotdistill.teachers.base import SamplingParams
from cotdistill.teachers.cache import TeacherCache
from cotdistill.teachers.generator import CachedGenerator
from cotdistill.teachers.http import OpenAIBackend
from cotdistill.teachers.prompted import PromptedTeacher
from cotdistill.teachers.stages import STAGES, TeachSettings, run_teach
from cotdistill.teachers.testing import transformers_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(smollm2_dir):
    with transformers_server(smollm2_dir, threads=1) as url:
        yield url, str(smollm2_dir)


def _teacher(url: str, model: str, cache_path) -> PromptedTeacher:
    backend = OpenAIBackend(url, model, concurrency=4, timeout=120, max_retries=2)
    return PromptedTeacher(CachedGenerator(backend, TeacherCache(cache_path)),
                           params=SamplingParams(temperature=0.7, max_tokens=48, seed=1))


def test_the_whole_chain_runs_against_transformers_serve_on_bbh(served, tmp_path):
    url, model = served
    examples = load_examples(DataConfig(source="bbh", subtasks=["date_understanding"], split="train",
                                        limit_per_task=3))
    assert len(examples) == 3
    settings = TeachSettings(n=1, rectify_budget=2, corrupt_budget=2, extraction="flexible")
    reports = run_teach(tmp_path / "run", examples, _teacher(url, model, tmp_path / "c.sqlite"), settings)
    assert list(reports) == list(STAGES)
    gen, grade, rect, corr, pair = (reports[s] for s in STAGES)
    assert gen.succeeded + gen.failed == 3 and gen.usage["requests"] == 3 and gen.usage["completion_tokens"] > 0
    assert grade.succeeded + grade.failed == 3
    assert rect.succeeded + rect.failed == grade.failed and corr.succeeded + corr.failed == grade.succeeded
    assert pair.succeeded == rect.succeeded + corr.succeeded
    stage = lambda name: next((tmp_path / "run" / "stages").glob(f"{name}-*"))  # noqa: E731
    cots = read_jsonl(stage("generate") / "teacher.jsonl", Rationale)
    assert all(c.text and c.model == model and "<think>" not in c.text for c in cots)
    for p in read_jsonl(stage("pair") / "dual.jsonl", DualPair):
        assert p.chosen.correct and not p.rejected.correct and p.chosen.example_id == p.rejected.example_id
    # a second run folder over the same cache asks the server nothing
    again = run_teach(tmp_path / "run2", examples, _teacher(url, model, tmp_path / "c.sqlite"), settings)
    assert sum(r.usage.get("requests", 0) for r in again.values()) == 0
    assert [r.succeeded for r in again.values()] == [r.succeeded for r in reports.values()]


def test_n_samples_from_transformers_serve_are_separate_seeded_requests(served, tmp_path):
    url, model = served
    gen = CachedGenerator(OpenAIBackend(url, model, concurrency=2), TeacherCache(tmp_path / "c.sqlite"))
    outs = gen.generate([[{"role": "user", "content": "Name a colour."}]], 2,
                        SamplingParams(temperature=1.0, max_tokens=8, seed=3))
    assert len(outs[0]) == 2 and gen.stats["requests"] == 2 and len(gen.cache) == 2


@pytest.fixture
def one_thread():
    """One torch thread: on a shared 2-core machine, two spinning threads make a 3 s generation take 40 s."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_the_local_backend_applies_the_chat_template_and_caches(smollm2, tmp_path, one_thread):
    from cotdistill.teachers.local import LocalBackend, render_for_tokenizer

    model, tokenizer = smollm2
    messages = [{"role": "user", "content": "What is 2 + 2?"}]
    rendered = render_for_tokenizer(messages, tokenizer)
    assert rendered.endswith("<|im_start|>assistant\n") and "What is 2 + 2?" in rendered
    backend = LocalBackend(model, tokenizer, name="smollm2-local", batch_size=4)
    calls = Counter()
    original = backend.run
    backend.run = lambda reqs, on_result, stats: (calls.update(n=len(reqs)), original(reqs, on_result, stats))
    gen = CachedGenerator(backend, TeacherCache(tmp_path / "c.sqlite"))
    first = gen.generate([messages, "Q: 3 + 4 =\nA:"], 1, SamplingParams(max_tokens=6))
    second = gen.generate([messages, "Q: 3 + 4 =\nA:"], 1, SamplingParams(max_tokens=6))
    assert calls["n"] == 2 and [c[0].text for c in first] == [c[0].text for c in second]
    assert all(c[0].completion_tokens <= 6 and c[0].prompt_tokens > 0 for c in first)


def test_a_completions_endpoint_gets_the_prompt_in_the_teachers_chat_template(served, smollm2_dir, tmp_path):
    from transformers import AutoTokenizer

    url, model = served
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    backend = OpenAIBackend(url, model, endpoint="completions", concurrency=1, timeout=120, max_retries=1)
    teacher = PromptedTeacher(CachedGenerator(backend, None), params=SamplingParams(max_tokens=8),
                              prompt_format="tokenizer", tokenizer=tokenizer)
    example = load_examples(DataConfig(source="bbh", subtasks=["navigate"], split="train", limit_per_task=1))[0]
    prompt = teacher._render("cot", example)
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")
    (cot,) = teacher.solve([example])[0]
    assert cot.text and teacher.generator.stats["completion_tokens"] > 0


def test_serve_teacher_is_the_one_command_between_a_gguf_alias_and_cotdistill_teach(smollm2_dir, tmp_path):
    # what the README tells a new user: serve the alias, then teach with the same alias as the model name
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    from cotdistill.records import write_jsonl
    from cotdistill.teachers.testing import free_port

    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    server = subprocess.Popen([sys.executable, "-m", "cotdistill", "serve-teacher", "smollm2-135m-instruct",
                               "--port", str(port), "--threads", "1"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, server.stdout.read()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "serve-teacher did not come up"
                time.sleep(0.5)
        examples = load_examples(DataConfig(source="bbh", subtasks=["navigate"], split="train", limit_per_task=1))
        write_jsonl(tmp_path / "q.jsonl", examples)
        teach = subprocess.run(
            [sys.executable, "-m", "cotdistill", "teach", "--base-url", f"http://127.0.0.1:{port}/v1",
             "--model", "smollm2-135m-instruct", "--data", "file", "--data-file", str(tmp_path / "q.jsonl"),
             "--stages", "generate", "--max-tokens", "16", "--run-dir", str(tmp_path / "run"),
             "--cache", str(tmp_path / "c.sqlite")], env=env, capture_output=True, text=True, timeout=300)
        assert teach.returncode == 0, teach.stderr[-2000:]
        assert "[generate] succeeded" in teach.stdout and "requests 1" in teach.stdout
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
