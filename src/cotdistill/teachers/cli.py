"""`cotdistill teach`: ask a teacher for CoTs, grade them, rectify the wrong, corrupt the right, pair them.

    cotdistill teach --base-url http://127.0.0.1:8000/v1 --model NAME --data bbh --subtasks navigate \\
        --limit-per-task 20 --n 2 --run-dir runs/teach

The API key comes from $OPENAI_API_KEY (or --api-key-env NAME) or --api-key-file PATH, never from the
command line. Answers are cached in $COTDISTILL_CACHE/teacher.sqlite (or --cache); rerun the same command to
resume after an interruption.
"""

from __future__ import annotations

import argparse
import json

from ..errors import CotdistillError
from .base import SamplingParams
from .keys import DEFAULT_KEY_ENV, load_api_key
from .stages import STAGES, TeachSettings


def add_teach_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("teacher")
    g.add_argument("--backend", choices=["openai", "local", "vllm", "scripted"], default="openai",
                   help="openai: any OpenAI-compatible server (OpenAI, vLLM, SGLang, llama.cpp, Ollama, "
                        "transformers serve); local: transformers in this process; vllm: vLLM offline (GPU); "
                        "scripted: the lab's scripted teacher")
    g.add_argument("--model", help="model name sent to the server, or a folder/alias for local and vllm")
    g.add_argument("--base-url", help="the server's URL up to /v1, e.g. http://127.0.0.1:8000/v1")
    g.add_argument("--endpoint", choices=["chat", "completions"], default="chat")
    g.add_argument("--api-key-env", default=DEFAULT_KEY_ENV, help="environment variable holding the key")
    g.add_argument("--api-key-file", help="file whose first line is the key")
    g.add_argument("--concurrency", type=int, default=16, help="requests in flight at once")
    g.add_argument("--timeout", type=float, default=120.0, help="seconds per request attempt")
    g.add_argument("--max-retries", type=int, default=6)
    g.add_argument("--backoff", type=float, default=0.5, help="first retry delay in seconds (doubles)")
    g.add_argument("--extra-body", type=json.loads, default=None, metavar="JSON",
                   help='more request fields, e.g. \'{"chat_template_kwargs": {"enable_thinking": false}}\'')
    g.add_argument("--batch-size", type=int, default=16, help="local backend batch size")
    g.add_argument("--mistake-rate", type=float, default=0.3, help="scripted teacher: share of wrong CoTs")
    g = p.add_argument_group("sampling")
    g.add_argument("--n", type=int, default=1, help="CoTs per question")
    g.add_argument("--temperature", type=float, default=0.7)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--max-tokens", type=int, default=512)
    g.add_argument("--stop", action="append", default=[], help="a stop string (repeatable)")
    g.add_argument("--seed", type=int, default=0)
    g = p.add_argument_group("prompts")
    g.add_argument("--prompts", help="folder of template overrides: NAME.txt or TASK/NAME.txt")
    g.add_argument("--exemplars", help="JSONL of few-shot exemplars {question, rationale, task?}")
    g.add_argument("--shots", type=int, default=3)
    g.add_argument("--rectify-with", choices=["hint", "revise"], default="hint")
    g.add_argument("--prompt-format", choices=["chat", "plain", "tokenizer"], default="chat",
                   help="chat: messages (the server applies the chat template); tokenizer: rendered here with "
                        "--tokenizer's chat template, for a completions endpoint; plain: joined text")
    g.add_argument("--tokenizer", help="folder or alias of the teacher's tokenizer (for --prompt-format tokenizer)")
    g = p.add_argument_group("data")
    g.add_argument("--data", choices=["bbh", "bbsub", "agieval", "arc", "file"], default="bbh")
    g.add_argument("--data-file", help="your .jsonl/.csv questions (with --data file), or data.path for a benchmark")
    g.add_argument("--subtasks", help="comma-separated tasks")
    g.add_argument("--split", default="train", help="split to teach on (default train)")
    g.add_argument("--test-split", help="also have the teacher answer this split (e.g. test) into "
                                        "test_rationales.jsonl: a study's teacher row")
    g.add_argument("--limit-per-task", type=int)
    g = p.add_argument_group("stages")
    g.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {','.join(STAGES)}")
    g.add_argument("--rectify-budget", type=int, default=3, help="attempts per wrong CoT")
    g.add_argument("--corrupt-budget", type=int, default=3, help="attempts per right CoT")
    g.add_argument("--corrupt-shots", type=int, default=2, help="in-context right/wrong pairs")
    g.add_argument("--extraction", choices=["strict", "flexible"], default="strict")
    g.add_argument("--run-dir", default="runs/teach")
    g.add_argument("--cache", help="SQLite cache file (default $COTDISTILL_CACHE/teacher.sqlite)")


def build_teacher(args: argparse.Namespace):
    """The teacher the arguments describe, and its cache (None for the scripted teacher)."""
    from .cache import TeacherCache
    from .generator import CachedGenerator
    from .prompted import PromptedTeacher
    from .prompts import PromptSet, load_exemplars

    if args.backend == "scripted":
        from ..lab.teacher import ScriptedTeacher

        return ScriptedTeacher(mistake_rate=args.mistake_rate, seed=args.seed), None
    if not args.model:
        raise CotdistillError(f"--backend {args.backend} needs --model")
    if args.backend == "openai":
        from .http import OpenAIBackend
        from .serve import served_model_name

        if not args.base_url:
            raise CotdistillError("--backend openai needs --base-url (e.g. https://api.openai.com/v1)")
        backend = OpenAIBackend(args.base_url, served_model_name(args.model), api_key=load_api_key(args.api_key_env, args.api_key_file),
                                endpoint=args.endpoint, concurrency=args.concurrency, timeout=args.timeout,
                                max_retries=args.max_retries, backoff=args.backoff, extra_body=args.extra_body)
    elif args.backend == "local":
        from .local import load_local_backend

        backend = load_local_backend(args.model, batch_size=args.batch_size)
    else:
        from .vllm import VllmBackend

        backend = VllmBackend(args.model)
    cache = TeacherCache(args.cache)
    params = SamplingParams(temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens,
                            stop=tuple(args.stop), seed=args.seed)
    tokenizer = None
    if args.prompt_format == "tokenizer":
        if not args.tokenizer:
            raise CotdistillError("--prompt-format tokenizer needs --tokenizer")
        from ..models import load_tokenizer

        tokenizer = load_tokenizer(args.tokenizer)
    teacher = PromptedTeacher(CachedGenerator(backend, cache), params=params, prompts=PromptSet(args.prompts),
                              tokenizer=tokenizer,
                              exemplars=load_exemplars(args.exemplars) if args.exemplars else (),
                              shots=args.shots, rectify_template=args.rectify_with, prompt_format=args.prompt_format)
    return teacher, cache


def teach_command(args: argparse.Namespace) -> None:
    from ..config import DataConfig
    from ..data import load_examples
    from .stages import run_teach

    subtasks = [s.strip() for s in args.subtasks.split(",")] if args.subtasks else None
    if args.data == "file" and not args.data_file:
        raise CotdistillError("--data file needs --data-file")
    data = DataConfig(source=args.data, path=args.data_file, subtasks=subtasks, split=args.split or None,
                      limit_per_task=args.limit_per_task)
    examples = load_examples(data)
    test_examples = load_examples(data.model_copy(update={"split": args.test_split})) if args.test_split else []
    teacher, cache = build_teacher(args)
    settings = TeachSettings(n=args.n, rectify_budget=args.rectify_budget, corrupt_budget=args.corrupt_budget,
                             corrupt_shots=args.corrupt_shots, extraction=args.extraction, seed=args.seed)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    reports = run_teach(args.run_dir, examples, teacher, settings, stages, test_examples)
    for report in reports.values():
        print(report.line())
    if cache is not None:
        print(f"cache: {cache.path} ({len(cache)} completions)")
