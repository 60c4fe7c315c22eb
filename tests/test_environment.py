"""The environment is part of a result: describe() records it, results.json keeps it, the report shows it."""

import importlib.metadata
import json
import subprocess
from pathlib import Path

import torch

from conftest import run_cli
from cotdistill.environment import cpu_info, describe, summary_lines
from cotdistill.report import RunResult, load_manifest, write_manifest, write_report

REPO = Path(__file__).resolve().parents[1]

X86_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 207
model name\t: Intel(R) Xeon(R) Processor
stepping\t: 2
flags\t\t: fpu avx2 avx512f

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: a second processor that must not be read
"""

ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 108.00
CPU part\t: 0xd0c

Model\t\t: Raspberry Pi 5 Model B Rev 1.0
"""


def test_cpu_info_reads_the_first_processor_model_and_generation(tmp_path):
    (tmp_path / "x86").write_text(X86_CPUINFO)
    assert cpu_info(tmp_path / "x86") == {"vendor": "GenuineIntel", "family": "6", "model_number": "207",
                                          "model": "Intel(R) Xeon(R) Processor", "stepping": "2"}
    (tmp_path / "arm").write_text(ARM_CPUINFO)
    assert cpu_info(tmp_path / "arm")["model"]  # no "model name": falls back to the platform's processor name
    assert cpu_info(tmp_path / "missing")["model"]  # no /proc (macOS, Windows): still names something


def test_describe_records_this_process_versions_threads_and_determinism():
    env = describe()
    assert json.loads(json.dumps(env)) == env  # JSON-ready, for results.json
    for name in ("torch", "transformers", "tokenizers", "peft", "accelerate", "datasets", "trl"):
        assert env["packages"][name] == importlib.metadata.version(name)
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["torch_threads"] == torch.get_num_threads()
    assert env["gpus"] == [] or torch.cuda.is_available()
    assert env["processor"]["model"]
    was = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(True)
        assert describe()["deterministic_algorithms"] is True
    finally:
        torch.use_deterministic_algorithms(was)


def test_describe_names_the_commit_of_the_checkout_it_runs_from():
    import cotdistill

    source = describe()["source"]
    if Path(cotdistill.__file__).resolve().parent != REPO / "src" / "cotdistill":
        assert source is None  # an installed copy, not this checkout: it names no commit
        return
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
    assert source["commit"] == head.stdout.strip()


def _results(root: Path) -> list[RunResult]:
    out = []
    for method, correct in (("std_cot", [True, False, True, False]), ("edit", [True, True, True, False])):
        path = root / method / "predictions.jsonl"
        path.parent.mkdir(parents=True)
        path.write_text("".join(json.dumps({"id": f"q{i}", "task": "t", "benchmark": "lab", "strict_correct": c,
                                            "flexible_correct": c}) + "\n" for i, c in enumerate(correct)))
        out.append(RunResult(method, 0, "IND", path))
    return out


def test_results_json_records_the_environment_and_the_report_shows_it(tmp_path):
    results = _results(tmp_path / "runs")
    manifest = tmp_path / "runs" / "results.json"
    write_manifest(manifest, results)
    recorded = json.loads(manifest.read_text())["environment"]
    assert recorded["packages"]["transformers"] == importlib.metadata.version("transformers")
    assert load_manifest(manifest)[0].environment == recorded

    result = run_cli("report", str(tmp_path / "runs"), "--bootstrap", "50")
    assert result.returncode == 0, result.stderr
    md = (tmp_path / "runs" / "report" / "comparison.md").read_text()
    page = (tmp_path / "runs" / "report" / "report.html").read_text()
    section = md[md.index("## Environment"):]
    for line in summary_lines(recorded):
        assert f"- {line}" in section
    assert f"transformers {recorded['packages']['transformers']}" in page and "<h2>Environment</h2>" in page
    assert recorded["processor"]["model"] in section and f"kernels {recorded['cpu_capability']}" in section


def test_report_warns_when_runs_come_from_different_environments_or_none(tmp_path):
    results = _results(tmp_path)
    here = describe()
    elsewhere = {**here, "packages": {**here["packages"], "transformers": "4.56.0"}}
    _, files = write_report(results, tmp_path / "two", n_boot=50, environments=[here, elsewhere, here])
    md = files.markdown.read_text()
    assert "made in 2 different environments" in md
    assert "(1) " in md and "(2) " in md and "transformers 4.56.0" in md
    _, files = write_report(results, tmp_path / "old", n_boot=50, environments=[None])
    assert "Not recorded" in files.markdown.read_text()
