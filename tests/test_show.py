"""`cotdistill show pairs`: the key-token view in the terminal and as HTML, and its summary."""

from __future__ import annotations

import json
import re

from cotdistill.cli import main
from cotdistill.lab.cli import main as lab_main


def _lab(tmp_path):
    out = tmp_path / "lab"
    assert lab_main(["--out", str(out), "--families", "navigate", "object_counting", "--n", "10",
                     "--mistake-rate", "0.4", "--pairs"]) == 0
    return out


def test_show_pairs_highlights_key_tokens_and_scores_them(tmp_path, capsys):
    out = _lab(tmp_path)
    capsys.readouterr()
    page = tmp_path / "pairs.html"
    assert main(["show", "pairs", str(out / "pairs.jsonl"), "--no-color", "--limit", "2", "--html", str(page)]) == 0
    text = capsys.readouterr().out
    plus = [line for line in text.splitlines() if line.startswith("  + ")]
    minus = [line for line in text.splitlines() if line.startswith("  - ")]
    assert len(plus) == len(minus) == 2
    assert all("[[" in line for line in plus + minus)  # every lab pair has key tokens on both sides
    assert "| navigate |" in text and "| object_counting |" in text  # per-family rows from examples.jsonl
    share = re.search(r"key-token share: ([\d.]+)% of (\d+) target tokens in (\d+) pairs", text)
    assert share and 0 < float(share.group(1)) < 50 and int(share.group(3)) == 20
    precision = float(re.search(r"precision ([\d.]+)", text).group(1))
    assert precision >= 0.95
    html = page.read_text()
    assert html.count('class="cot"') == 4 and 'class="good' in html and 'class="bad' in html
    assert 'class="truth"' in html or 'class="good truth"' in html


def test_pairs_without_ground_truth_report_only_the_share(tmp_path, capsys, smollm2_dir):
    out = _lab(tmp_path)
    stripped = tmp_path / "plain.jsonl"
    lines = []
    for line in (out / "pairs.jsonl").read_text().splitlines():
        pair = json.loads(line)
        pair["chosen"]["key_spans"] = pair["rejected"]["key_spans"] = []
        lines.append(json.dumps(pair))
    stripped.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["show", "pairs", str(stripped), "--limit", "0", "--tokenizer", str(smollm2_dir)]) == 0
    assert "no ground-truth key spans in this file" in capsys.readouterr().out
    assert main(["show", "pairs", str(stripped), "--tokenizer", str(tmp_path / "nowhere")]) == 2
    assert "cannot load a tokenizer" in capsys.readouterr().err


def test_a_malformed_pairs_file_names_the_line_and_field(tmp_path, capsys):
    bad = tmp_path / "pairs.jsonl"
    bad.write_text('{"id": "p", "example_id": "e", "kind": "positive"}\n')
    assert main(["show", "pairs", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:1" in err and "chosen" in err
