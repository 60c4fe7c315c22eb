"""Answer extraction and grading for BIG-Bench-Hard-style chain-of-thought outputs.

Two extraction rules are reported side by side:

* strict: only the answer stated right after "the answer is" (its last occurrence), else None;
* flexible: what the output states after its last "the answer is", exactly as strict reads it; only an output
  with no answer phrase at all gets a fallback per answer format (the last "(X)" option, the last whole-word
  label, the last number, the last non-empty line). A stated hedge ("(A) or (B)") or a stated option that
  does not exist ("(E)" of four) stays wrong: the fallback never overrides what the output says.

Every answer goes through `normalize_answer`, and a prediction is correct only when its normalised form equals
a normalised gold answer (`Example.answer` or one of `Example.alternatives`) exactly: never by substring or
suffix matching, which scores "20" right for "-20" and "valid" right for "invalid".

Options are labelled (A)..(Z), then (AA), (AB), .. (see `option_label`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from .records import Example

ANSWER_PHRASE = "Therefore, the answer is"

# --- thinking ------------------------------------------------------------------------------------------------

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.IGNORECASE | re.DOTALL)
_THINK_OPEN = re.compile(r"<think>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)

# --- the answer phrase -----------------------------------------------------------------------------------------

# Matching "the answer is" covers "Therefore, the answer is", "So the answer is", "The answer is:" alike.
# A negated "the answer is not (A)" states no answer, so it is skipped rather than read as "(A)".
_PHRASE = re.compile(r"\b(?:the|my)\s+(?:final\s+|correct\s+)?answer\s+is\b(?!\s+not\b)", re.IGNORECASE)
_MARKDOWN = re.compile(r"[*`]|__")
_LATEX_WRAP = re.compile(r"\\(?:boxed|text|textbf|mathrm)\{([^{}]*)\}")
# A sentence ends at . ! or ? followed by whitespace; "20.5" and "(B)." at the end of a line are not split.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_ANSWER_END = re.compile(r"[.!?](?=\s)|\n")

# --- per-format patterns ---------------------------------------------------------------------------------------

# An option label is one or two letters: questions with more than 26 options go on (AA), (AB), ...
# The whole answer is one option label: "(B)", "B", "B)", "(b)", "(B.)", "[B]", "Option B", "choice (AB)".
_LABEL_ONLY = re.compile(
    r"(?:(?:option|choice)\s*)?(?P<open>[(\[])?\s*(?P<label>[A-Za-z]{1,2})\s*\.?\s*[)\]]?", re.IGNORECASE
)
# The answer starts with a bracketed label followed by the option text: "(A) 05/01/2021".
_LEADING_LABEL = re.compile(r"[(\[]([A-Za-z]{1,2})[)\]](?!\w)")
_BRACKETED_LABEL_ANY = re.compile(r"[(\[]([A-Za-z]{1,2})[)\]]")
# In free reasoning only upper-case letters count, so "apple(s)" or "(a) first step" are not read as options.
_BRACKETED_OPTION = re.compile(r"\(([A-Z]{1,2})\)")
# Stored option texts may carry their label ("(A) 05/01/2021"); compare without it.
_OPTION_PREFIX = re.compile(r"^\s*\([A-Z]{1,2}\)\s*")

_LABEL_SEPARATOR = re.compile(r"\s*[,;:(]|\s+[-\u2013\u2014]\s")

_NUMBER_BODY = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_LEADING_NUMBER = re.compile(rf"(?P<neg>-\s*)?[$€£¥]?\s*(?P<neg2>-)?(?P<num>{_NUMBER_BODY}|\.\d+)")
# After the number an operator, "=" or another digit means an expression ("20 - 5 = 15"), not an answer.
_EXPRESSION_TAIL = re.compile(r"\s*(?:[-+*/×÷=^]|[.,]?\d)")
# A minus sign counts only when glued to the number and not part of a word or range ("x-20", "3-5").
_ANY_NUMBER = re.compile(rf"(?<![\w.,])(?P<neg>-)?[$€£¥]?(?P<neg2>-)?(?P<num>{_NUMBER_BODY})(?!\d)")
_NUMBER_WORDS = {
    word: value
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
}

_DYCK_CHARS = set("()[]{}<>")
_ANSWER_PREFIX = re.compile(r"^(?:final\s+)?answer\s*:\s*", re.IGNORECASE)


# --- public API ------------------------------------------------------------------------------------------------


def final_answer_sentence(answer: str) -> str:
    """The closing sentence rationales are expected to end with: "Therefore, the answer is (B)."."""
    answer = answer.strip()
    return f"{ANSWER_PHRASE} {answer}" + ("" if answer.endswith(".") else ".")


def closing_sentence_start(text: str) -> int:
    """Where the closing "Therefore, the answer is ..." sentence starts (its last occurrence), else len(text)."""
    start = text.rfind(ANSWER_PHRASE)
    return start if start >= 0 else len(text)


def answer_sentence_end(text: str) -> int | None:
    """Where the first sentence that states an answer ends in a text still being generated: just after its
    ". ", "! " or "? " (the space shows it is not "20.5"), or at its line break; None while no answer sentence
    is complete. An answer inside unclosed thinking does not count."""
    start = 0
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:
        start = closes[-1].end()
    elif _THINK_OPEN.search(text):
        return None
    for phrase in _PHRASE.finditer(text, start):
        rest = text[phrase.end() :]
        body = len(rest) - len(rest.lstrip(" \t\r\n:"))  # the answer may start on the next line
        end = _ANSWER_END.search(rest, body)
        if end and rest[body : end.start() + 1].strip(" .!?\n"):
            return phrase.end() + end.start() + (0 if rest[end.start()] == "\n" else 1)
    return None


def strip_thinking(text: str) -> str:
    """Remove reasoning-model thinking so only the visible answer is graded.

    Closed <think>...</think> blocks are dropped; a stray </think> (the chat template opened the block in the
    prompt) keeps only what follows it; an unclosed <think> means everything after it is still thinking.
    """
    text = _THINK_BLOCK.sub("", text)
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:
        text = text[closes[-1].end() :]
    opened = _THINK_OPEN.search(text)
    if opened:
        text = text[: opened.start()]
    return text.strip()


def option_label(index: int) -> str:
    """The label of option `index` (0-based): "(A)".."(Z)", then "(AA)".."(AZ)", "(BA)", .. like spreadsheet columns.

    Past Z the labels stay upper-case letters in brackets, as BBH-style questions show options, rather than
    going on with "[", "\\" or lower-case letters: "(a)" would then name the 33rd option while every reader
    (and this grader) takes a model's "(a)" for "(A)".
    """
    if index < 0:
        raise ValueError(f"option index {index} is negative")
    letters = ""
    n = index + 1
    while n:
        n, rest = divmod(n - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return f"({letters})"


def extract_strict(text: str, example: Example) -> str | None:
    """The normalised answer after the last "the answer is", or None if it is absent or not a valid answer.

    A copied template placeholder ("The answer is X." or "(X)") is no answer, unless X is a real option."""
    stated = _answer_after_phrase(_prepare(text))
    if stated is None or _is_placeholder(stated, example):
        return None
    return normalize_answer(stated, example)


def extract_flexible(text: str, example: Example) -> str | None:
    """The stated answer when the output has an answer phrase (as strict), else the format's fallback.

    The fallback (last option, label, number or line) applies only to outputs that never say "the answer is":
    an output that states a hedge or a non-existent option has answered, wrongly, and must stay wrong. A copied
    template placeholder ("the answer is X") states nothing, so the fallback applies to it.
    """
    body = _prepare(text)
    stated = _answer_after_phrase(body)
    if stated is not None and not _is_placeholder(stated, example):
        return normalize_answer(stated, example)
    fmt = example.answer_format
    if fmt == "choice":
        labels = set(_labels(example))
        found = [m.group(1) for m in _BRACKETED_OPTION.finditer(body) if m.group(1) in labels]
        return f"({found[-1]})" if found else None
    if fmt == "label":
        return _last_label(body, example)
    if fmt == "number":
        found = list(_ANY_NUMBER.finditer(body))
        return _number_from_match(found[-1]) if found else None
    # text: strict already covered "after the last phrase"; otherwise the last non-empty line.
    lines = [line for line in body.splitlines() if line.strip()]
    if not lines:
        return None
    return normalize_answer(_ANSWER_PREFIX.sub("", lines[-1].strip()), example)


def normalize_answer(answer: str, example: Example) -> str | None:
    """Canonical form of an answer for `example.answer_format`, or None if it is not a valid answer of it.

    choice -> "(B)" (only labels among the example's options); label -> the label as written in `choices`;
    number -> a canonical decimal string ("20.0" -> "20"); text -> whitespace-collapsed text without a final
    period, Dyck bracket sequences as space-separated brackets.
    """
    cleaned = _clean(answer)
    if not cleaned:
        return None
    fmt = example.answer_format
    if fmt == "choice":
        return _normalize_choice(cleaned, example)
    if fmt == "label":
        return _normalize_label(cleaned, example)
    if fmt == "number":
        return _normalize_number(cleaned)
    if set(cleaned) - {" "} <= _DYCK_CHARS:
        return " ".join(ch for ch in cleaned if ch != " ")  # "]}]" and "] } ]" are the same completion
    return cleaned


def is_correct(predicted: str | None, example: Example) -> bool:
    """Whether a prediction equals a gold answer after normalisation (exact equality, no partial credit).

    The golds are `example.answer` and `example.alternatives` (several options can be right); a gold that is
    not valid for its own format (e.g. "(E)" with four options) never matches.
    """
    caseless = example.answer_format in ("label", "text")

    def canonical(answer: str) -> str | None:
        normalized = normalize_answer(answer, example)
        return normalized.casefold() if normalized is not None and caseless else normalized

    pred = None if predicted is None else canonical(predicted)
    return pred is not None and any(canonical(gold) == pred for gold in (example.answer, *example.alternatives))


@dataclass(frozen=True)
class Grade:
    """Both extractions of one output and whether each is correct."""

    strict: str | None
    flexible: str | None
    strict_correct: bool
    flexible_correct: bool


def grade(text: str, example: Example) -> Grade:
    """Extract with both rules and score each against the example's gold answer."""
    strict = extract_strict(text, example)
    flexible = extract_flexible(text, example)
    return Grade(strict, flexible, is_correct(strict, example), is_correct(flexible, example))


# --- helpers ---------------------------------------------------------------------------------------------------


def _prepare(text: str) -> str:
    # NFKC folds full-width "（Ｂ）" to "(B)"; the Unicode minus is not folded by it, so map it by hand.
    return unicodedata.normalize("NFKC", strip_thinking(text)).replace("\u2212", "-")


def _answer_after_phrase(text: str) -> str | None:
    """Text of the sentence after the last answer phrase, or None if the phrase never occurs."""
    matches = list(_PHRASE.finditer(text))
    if not matches:
        return None
    rest = _MARKDOWN.sub("", text[matches[-1].end() :])
    rest = rest.lstrip(" \t\r\n:")  # "The answer is:\n(B)" puts the answer on the next line
    line = rest.split("\n", 1)[0]
    return _SENTENCE_END.split(line, maxsplit=1)[0].strip()


def _clean(answer: str) -> str:
    """Strip formatting that never belongs to the answer: markdown, \\boxed{}, a final period, quotes."""
    s = unicodedata.normalize("NFKC", answer).replace("\u2212", "-")
    s = _MARKDOWN.sub("", s)
    s = _LATEX_WRAP.sub(r"\1", s)
    s = " ".join(s.split()).rstrip(" .。")
    if len(s) > 2 and s[0] == s[-1] == "$":  # "$20$" is math mode; a lone "$20" is currency and stays
        s = s[1:-1].strip().rstrip(" .。")
    return s.strip("\"'“”‘’ ")


def _labels(example: Example) -> list[str]:
    """Option labels (without brackets) that exist for this example; with no stored options, any of A..Z."""
    return [option_label(i)[1:-1] for i in range(len(example.choices) or 26)]


def _is_placeholder(stated: str, example: Example) -> bool:
    """A copied template placeholder "X" / "(X)": not an answer unless X names a real option or label."""
    if _clean(stated).strip("()[] ") != "X":
        return False
    real_option = example.answer_format == "choice" and bool(example.choices) and "X" in _labels(example)
    return not real_option and "X" not in example.choices


def _key(text: str) -> str:
    return _clean(text).casefold()


def _normalize_choice(answer: str, example: Example) -> str | None:
    labels = _labels(example)

    def option(label: str) -> str | None:
        label = label.upper()
        return f"({label})" if label in labels else None

    m = _LABEL_ONLY.fullmatch(answer)
    # Unbracketed, two letters are a label only in capitals: "an" or "no" is a word (maybe an option's text).
    if m and (len(m.group("label")) == 1 or m.group("open") or m.group("label").isupper()):
        return option(m.group("label"))
    if m := _LEADING_LABEL.match(answer):
        # "(A) 05/01/2021" names A; "(A) or (B)" hedges between options and names none.
        others = {x.upper() for x in _BRACKETED_LABEL_ANY.findall(answer[m.end() :])}
        others &= set(labels) - {m.group(1).upper()}
        return None if others else option(m.group(1))
    key = answer.casefold()
    for label, text in zip(labels, example.choices):
        if _key(_OPTION_PREFIX.sub("", text)) == key:
            return f"({label})"
    return None


def _normalize_label(answer: str, example: Example) -> str | None:
    answer = answer.strip("()[] ")
    if not answer:
        return None
    if not example.choices:  # nothing to check against: keep the answer, compared case-insensitively
        return answer
    folded = answer.casefold()
    # Longest first, so a label that extends another ("not plausible" vs "plausible") is tried first.
    for label in sorted(example.choices, key=len, reverse=True):
        key = _key(label)
        if folded == key:
            return label
        # "No, because ..." or "valid: the premises ..." state the label and then justify it.
        if folded.startswith(key) and _LABEL_SEPARATOR.match(answer, len(key)):
            return label
    return None


def _last_label(text: str, example: Example) -> str | None:
    if not example.choices:
        return None
    # Whole words only: "invalid" must never yield "valid", "Noah" must never yield "No". A label right after
    # "not" is skipped: "it is not valid" states the opposite, so it is better to find nothing than "valid".
    alternatives = "|".join(re.escape(_clean(c)) for c in sorted(example.choices, key=len, reverse=True))
    found = list(re.finditer(rf"(?<!\w)(?<!\bnot )(?:{alternatives})(?!\w)", text, re.IGNORECASE))
    return _normalize_label(found[-1].group(0), example) if found else None


def _canonical_number(digits: str, negative: bool) -> str | None:
    try:
        value = Decimal(digits.replace(",", ""))
    except InvalidOperation:
        return None
    if negative:
        value = -value
    if value == 0:
        return "0"  # not "-0" or "0E+1"
    return format(value.normalize(), "f")


def _number_from_match(m: re.Match[str]) -> str | None:
    return _canonical_number(m.group("num"), bool(m.group("neg") or m.group("neg2")))


def _normalize_number(answer: str) -> str | None:
    if m := _LEADING_NUMBER.match(answer):
        if _EXPRESSION_TAIL.match(answer, m.end()):
            return None
        return _number_from_match(m)
    # Object counting answers are sometimes spelled out: "So the answer is three."
    word = re.match(r"([a-z]+)(?![\w-])", answer.casefold())
    if word and word.group(1) in _NUMBER_WORDS:
        return str(_NUMBER_WORDS[word.group(1)])
    return None
