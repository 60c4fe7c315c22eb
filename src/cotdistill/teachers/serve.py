"""`cotdistill serve-teacher`: a local model behind an OpenAI-compatible server, in one command.

    cotdistill serve-teacher smollm2-135m-instruct --port 8000

It converts a GGUF model (or the smollm2-135m-instruct alias) once into a cached transformers folder
(`models.hf_copy_of`), then runs `transformers serve` pinned to that folder on 127.0.0.1 until Ctrl-C. The
pinned server accepts only that folder as the request's model name; `cotdistill teach --model` resolves the
same alias to the same folder, so the alias works on both sides.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import CotdistillError


def transformers_cli() -> str:
    """The `transformers` command of this environment."""
    beside = Path(sys.executable).parent / "transformers"
    found = str(beside) if beside.exists() else shutil.which("transformers")
    if not found:
        raise CotdistillError("the `transformers` command is missing: pip install 'transformers[serving]'")
    return found


def serve_command(model_dir: str | os.PathLike, host: str, port: int, extra_args: Sequence[str] = ()) -> list[str]:
    return [transformers_cli(), "serve", "--host", host, "--port", str(port), *extra_args, str(model_dir)]


def served_model_name(model: str) -> str:
    """The name a pinned `transformers serve` answers to: a GGUF model or alias becomes its converted folder
    (the one `serve-teacher` serves); any other name is sent as given."""
    from ..models import SMOLLM2_ALIAS, hf_copy_of

    if model == SMOLLM2_ALIAS or model.endswith(".gguf"):
        return str(hf_copy_of(model))
    return model


def add_serve_teacher_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a transformers folder, a .gguf file or the alias smollm2-135m-instruct")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--threads", type=int, default=None, help="CPU threads for the model (OMP_NUM_THREADS)")


def serve_teacher_command(args: argparse.Namespace) -> None:
    folder = served_model_name(args.model)
    url = f"http://{args.host}:{args.port}/v1"
    print(f"serving {folder} at {url} (Ctrl-C stops it); teach with:\n"
          f"  cotdistill teach --base-url {url} --model {args.model} ...", flush=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    # exec: the server becomes this process, so Ctrl-C and SIGTERM reach it directly
    command = serve_command(folder, args.host, args.port)
    os.execve(command[0], command, env)
