"""`cotdistill show pairs FILE`: dual CoT pairs with their key tokens highlighted, and how many there are.

Key tokens come from align.py on the student's tokenizer, exactly as EDIT's stage 2 weights them. In the
terminal, key tokens of the correct CoT are green and of the wrong CoT red; ground-truth key spans (lab pairs
carry them) are underlined, so misses and extras are visible. `--html OUT` writes the same view as a page.
The summary gives the key-token share (key tokens / target tokens, both sides, over the file; EDIT reports about
4.7% on its data) and, where pairs carry ground truth, token-level precision and recall against it.
"""

from __future__ import annotations

import argparse
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .align import KeyTokens, SpanScore, key_token_weights_many
from .errors import CotdistillError
from .lab.core import counterpart_spans
from .records import DualPair, Example, atomic_write_text, read_jsonl

Spans = list[tuple[int, int]]

GREEN, RED, UNDERLINE, RESET = "\x1b[42;30m", "\x1b[41;37m", "\x1b[4m", "\x1b[0m"


def pair_truth_spans(pair: DualPair) -> tuple[Spans, Spans] | None:
    """Ground-truth key spans of (chosen, rejected), when one side records its spans against the other.

    The lab's rectified CoT carries spans against the wrong CoT it fixes, and a corrupted CoT against the
    correct one it breaks; the other side's spans follow (lab.core.counterpart_spans). None: no ground truth.
    """
    chosen, rejected = pair.chosen, pair.rejected
    try:
        if rejected.parent == chosen.id and rejected.key_spans:
            return counterpart_spans(rejected.text, rejected.key_spans, chosen.text), list(rejected.key_spans)
        if chosen.parent == rejected.id and chosen.key_spans:
            return list(chosen.key_spans), counterpart_spans(chosen.text, chosen.key_spans, rejected.text)
    except CotdistillError:
        return None  # spans that do not describe this pair's texts: treat as no ground truth
    return None


@dataclass(frozen=True)
class Side:
    """One CoT of a pair as rendered: its text, token offsets, key tokens and ground-truth spans."""

    correct: bool
    text: str
    offsets: list[tuple[int, int]]
    key: list[bool]
    truth: Spans


@dataclass
class PairView:
    pair: DualPair
    keys: KeyTokens
    truth: tuple[Spans, Spans] | None

    def sides(self) -> tuple[Side, Side]:
        truth = self.truth or ([], [])
        k = self.keys
        return (Side(True, self.pair.chosen.text, k.correct.target_offsets, k.correct_key, truth[0]),
                Side(False, self.pair.rejected.text, k.wrong.target_offsets, k.wrong_key, truth[1]))


def view_pairs(tokenizer, pairs: Sequence[DualPair]) -> list[PairView]:
    """Each pair with its key tokens (tokenized in one batch) and its ground-truth key spans, if known."""
    keys = key_token_weights_many(tokenizer, [(p.chosen.text, p.rejected.text) for p in pairs])
    return [PairView(pair, k, pair_truth_spans(pair)) for pair, k in zip(pairs, keys)]


@dataclass
class Tally:
    """Counts over a set of pairs: key-token share and, where ground truth exists, precision and recall."""

    pairs: int = 0
    key_tokens: int = 0
    target_tokens: int = 0
    with_truth: int = 0
    score: SpanScore = field(default_factory=SpanScore)

    def add(self, view: PairView) -> None:
        self.pairs += 1
        for key in (view.keys.correct_key, view.keys.wrong_key):
            self.key_tokens += sum(key)
            self.target_tokens += len(key)
        if view.truth is not None:
            self.with_truth += 1
            for side in view.sides():
                self.score.add(side.offsets, side.key, side.truth)

    @property
    def share(self) -> float:
        return self.key_tokens / self.target_tokens if self.target_tokens else float("nan")


def _runs(side: Side) -> list[tuple[str, bool, bool]]:
    """The text cut into runs of characters that share (inside a key token, inside a ground-truth span)."""
    n = len(side.text)
    key, truth = [False] * n, [False] * n
    for (a, b), k in zip(side.offsets, side.key):
        if k:
            key[a:min(b, n)] = [True] * (min(b, n) - a)
    for a, b in side.truth:
        truth[a:min(b, n)] = [True] * (min(b, n) - a)
    runs: list[tuple[str, bool, bool]] = []
    for ch, k, t in zip(side.text, key, truth):
        if runs and runs[-1][1:] == (k, t):
            runs[-1] = (runs[-1][0] + ch, k, t)
        else:
            runs.append((ch, k, t))
    return runs


def render_terminal(side: Side, ansi: bool = True) -> str:
    """"+ " or "- " and the text, key tokens green (correct) or red (wrong) and ground truth underlined; without
    ANSI, key tokens as [[...]]."""
    colour = GREEN if side.correct else RED
    out = ["  + " if side.correct else "  - "]
    for piece, k, t in _runs(side):
        if not ansi:
            out.append(f"[[{piece}]]" if k else piece)
        else:
            style = (colour if k else "") + (UNDERLINE if t else "")
            out.append(f"{style}{piece}{RESET}" if style else piece)
    return "".join(out)


def render_html(side: Side) -> str:
    out = ['<p class="cot">' + ("+ " if side.correct else "- ")]
    for piece, k, t in _runs(side):
        classes = " ".join(c for c, on in (("good" if side.correct else "bad", k), ("truth", t)) if on)
        escaped = html.escape(piece)
        out.append(f'<span class="{classes}">{escaped}</span>' if classes else escaped)
    return "".join(out) + "</p>"


HTML_HEAD = """<!doctype html><html><head><meta charset="utf-8"><title>cotdistill: dual pairs</title><style>
body{font-family:sans-serif;max-width:60em;margin:2em auto} .cot{font-family:monospace;white-space:pre-wrap}
.good{background:#9e9} .bad{background:#f99} .truth{text-decoration:underline} td,th{padding:0 .6em}
</style></head><body><h1>Dual pairs: key tokens</h1>
<p>Green: key tokens of the correct CoT; red: of the wrong CoT; underlined: ground-truth key spans.</p>
"""


def _fmt(x: float) -> str:
    return "n/a" if x != x else f"{x:.3f}"


def summary_rows(tallies: dict[str, Tally]) -> list[list[str]]:
    rows = [["group", "pairs", "key tokens", "target tokens", "key share", "precision", "recall",
             "spans found", "pairs with truth"]]
    for name, t in tallies.items():
        s = t.score
        rows.append([name, str(t.pairs), str(t.key_tokens), str(t.target_tokens), f"{t.share:.2%}",
                     _fmt(s.precision), _fmt(s.recall), f"{s.spans_found}/{s.spans}", str(t.with_truth)])
    return rows


def _pair_header(view: PairView) -> str:
    p = view.pair
    return f"{p.id}  kind={p.kind}  error_type={p.rejected.error_type}  " \
           f"key tokens {sum(view.keys.correct_key)}/{len(view.keys.correct_key)} (correct), " \
           f"{sum(view.keys.wrong_key)}/{len(view.keys.wrong_key)} (wrong)"


def _load_tokenizer(args: argparse.Namespace):
    if args.tokenizer:
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(args.tokenizer)
        except (OSError, ValueError) as e:
            problem = str(e).splitlines()[0]
            raise CotdistillError(f"cannot load a tokenizer from '{args.tokenizer}': {problem}") from None
    from .models import load_tokenizer

    return load_tokenizer(args.model)


def _tasks(pairs_file: Path, examples_file: str | None) -> dict[str, str]:
    path = Path(examples_file) if examples_file else pairs_file.with_name("examples.jsonl")
    if not path.exists():
        if examples_file:
            raise CotdistillError(f"examples file '{path}' does not exist")
        return {}
    from .lab.families import family_of_task

    out = {}
    for e in read_jsonl(path, Example):
        try:
            out[e.id] = family_of_task(e.task).name
        except CotdistillError:
            out[e.id] = e.task  # not a lab family: group by the task itself
    return out


def show_pairs(args: argparse.Namespace) -> int:
    path = Path(args.file)
    pairs = read_jsonl(path, DualPair)
    if not pairs:
        raise CotdistillError(f"{path}: no pairs")
    tokenizer = _load_tokenizer(args)
    tasks = _tasks(path, args.examples)
    tallies: dict[str, Tally] = {"all": Tally()}
    shown: list[PairView] = []
    for pair, view in zip(pairs, view_pairs(tokenizer, pairs)):
        tallies["all"].add(view)
        group = tasks.get(pair.example_id)
        if group:
            tallies.setdefault(group, Tally()).add(view)
        if len(shown) < args.limit:
            shown.append(view)
    ansi = not args.no_color
    for view in shown:
        print(_pair_header(view))
        for side in view.sides():
            print(render_terminal(side, ansi))
        print()
    groups = dict(sorted(tallies.items(), key=lambda kv: (kv[0] != "all", kv[0])))
    rows = summary_rows(groups)
    print("| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]))
    for row in rows[1:]:
        print("| " + " | ".join(row) + " |")
    total = tallies["all"]
    print(f"key-token share: {total.share:.2%} of {total.target_tokens} target tokens in {total.pairs} pairs"
          + (f"; vs ground truth ({total.with_truth} pairs): precision {_fmt(total.score.precision)}, "
             f"recall {_fmt(total.score.recall)}, spans found {total.score.spans_found}/{total.score.spans}"
             if total.with_truth else "; no ground-truth key spans in this file"))
    if args.html:
        parts = [HTML_HEAD, "<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in rows[0]) + "</tr>"]
        parts += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:]]
        parts.append("</table>")
        for view in shown:
            parts.append(f"<h3>{html.escape(_pair_header(view))}</h3>")
            parts += [render_html(side) for side in view.sides()]
        parts.append("</body></html>\n")
        atomic_write_text(args.html, "\n".join(parts))
        print(f"wrote {args.html}")
    return 0


def add_show_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", required=True, metavar="WHAT")
    p = sub.add_parser("pairs", help="dual CoT pairs (pairs.jsonl) with key tokens highlighted")
    p.add_argument("file", help="a pairs JSONL file (records.DualPair), e.g. from `cotdistill lab --pairs`")
    p.add_argument("--model", default="smollm2-135m-instruct",
                   help="student whose tokenizer defines the key tokens (folder, hub name or alias)")
    p.add_argument("--tokenizer", help="a tokenizer folder to use instead of --model's")
    p.add_argument("--examples", help="examples JSONL for per-task rows (default: examples.jsonl beside FILE)")
    p.add_argument("--limit", type=int, default=3, help="pairs to print (default 3; the summary covers all)")
    p.add_argument("--html", help="also write the view to this HTML file")
    p.add_argument("--no-color", action="store_true", help="mark key tokens as [[...]] instead of ANSI colours")
    p.set_defaults(func=show_pairs)
