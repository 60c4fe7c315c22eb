"""The `cotdistill` command: one subcommand per stage, and `run` for a whole config."""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import CotdistillError


def _eval_command(args: argparse.Namespace) -> None:
    from .config import load_config
    from .pipeline import run_pipeline

    overrides = [
        f"student.model={args.model}",
        f"data.source={args.benchmark}",
        f"eval.batch_size={args.batch_size}",
        f"eval.max_new_tokens={args.max_new_tokens}",
        f"eval.self_consistency={args.self_consistency}",
        f"eval.prompt_style={args.prompt_style}",
        f"run_dir={args.run_dir}",
    ]
    if args.gguf_file:
        overrides.append(f"student.gguf_file={args.gguf_file}")
    if args.adapter:
        overrides.append(f"student.adapter={args.adapter}")
    if args.subtasks:
        overrides.append(f"data.subtasks=[{args.subtasks}]")
    if args.split:
        overrides.append(f"data.split={args.split}")
    if args.limit_per_task:
        overrides.append(f"data.limit_per_task={args.limit_per_task}")
    if args.data_file:
        overrides += ["data.source=file", f"data.path={args.data_file}"]
    run_pipeline(load_config(args.config, overrides + list(args.overrides)))


def _run_command(args: argparse.Namespace) -> None:
    from .config import load_config

    cfg = load_config(args.config, args.overrides)
    if args.dry_run:
        from .plan import plan_study

        print(plan_study(cfg))
        return
    from .pipeline import run_pipeline

    run_pipeline(cfg)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cotdistill",
        description="Chain-of-thought distillation: teacher reasoning in, a small reasoning student out.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="STAGE")

    p = sub.add_parser("run", help="run a whole config: cotdistill run CONFIG.yaml key=value ...")
    p.add_argument("config", help="YAML config (see configs/)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. eval.batch_size=8")
    p.add_argument("--dry-run", action="store_true", help="a study's plan and cost estimate (stages, methods x "
                                                           "seeds, questions, sequences, tokens, time); trains nothing")
    p.set_defaults(func=_run_command)

    # Stage commands that live with their module: (name, module, help); each module has add_<name>_arguments
    # and, unless its arguments set their own subcommands, <name>_command.
    for name, module, help_text in [
        ("data", "data.listing", "list the benchmarks (official BBH, AGIEval, ARC, BB-sub) with counts, or how to get them"),
        ("lab", "lab.cli", "write a lab dataset: procedural BBH-format questions and scripted-teacher CoTs"),
        ("teach", "teachers.cli", "teacher CoTs: generate, grade, rectify, corrupt, pair (cached, resumable)"),
        ("import", "teachers.importing", "bring your own teacher CoTs: match, grade and write them as `teach` does"),
        ("train", "train.cli", "train a student on WeightedSequence JSONL (weighted loss, LoRA or full)"),
        ("report", "report", "compare methods over seeds from a results manifest: table, plot, HTML"),
        ("pick", "choose", "name a study's best row on its validation split (study.report_validation), never on test"),
        ("show", "show", "inspect artifacts: `show pairs FILE` highlights the key tokens of dual CoT pairs"),
        ("export", "export", "write a run's CoTs, dual pairs or sequences for TRL, OpenAI, ShareGPT, LLaMA-Factory"),
    ]:
        mod = importlib.import_module(f".{module}", __package__)
        p = sub.add_parser(name, help=help_text)
        getattr(mod, f"add_{name}_arguments")(p)
        if hasattr(mod, f"{name}_command"):
            p.set_defaults(func=getattr(mod, f"{name}_command"))

    from .teachers.serve import add_serve_teacher_arguments, serve_teacher_command

    p = sub.add_parser("serve-teacher", help="serve a local model (GGUF, folder, alias) as an OpenAI-compatible "
                                             "teacher on 127.0.0.1 with `transformers serve`")
    add_serve_teacher_arguments(p)
    p.set_defaults(func=serve_teacher_command)

    p = sub.add_parser("eval", help="evaluate a student on a benchmark split (strict and flexible accuracy)")
    p.add_argument("--model", default="smollm2-135m-instruct", help="folder, hub name, .gguf file or alias")
    p.add_argument("--gguf-file", help="GGUF file name inside --model's folder")
    p.add_argument("--adapter", help="a PEFT adapter folder to apply")
    p.add_argument("--benchmark", choices=["bbh", "bbsub", "agieval", "arc"], default="bbh")
    p.add_argument("--subtasks", help="comma-separated subtasks (default: all)")
    p.add_argument("--split", help="train or test (default: test)")
    p.add_argument("--limit-per-task", type=int, help="evaluate only the first N questions of each subtask")
    p.add_argument("--data-file", help="evaluate on your own .jsonl/.csv file instead of a benchmark")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--self-consistency", type=int, default=1, metavar="K", help="majority vote over K samples")
    p.add_argument("--prompt-style", choices=["plain", "chat"], default="plain")
    p.add_argument("--run-dir", default="runs/eval")
    p.add_argument("--config", help="a YAML config to start from")
    p.add_argument("overrides", nargs="*", help="further dotted overrides")
    p.set_defaults(func=_eval_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except CotdistillError as e:
        print(f"cotdistill: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cotdistill: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
