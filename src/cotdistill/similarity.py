"""Surface similarity of two texts: word n-gram Jaccard, used to tell near-duplicate reasoning paths apart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class _HasText(Protocol):
    text: str


def word_ngrams(text: str, n: int = 3) -> frozenset[tuple[str, ...]]:
    """Lower-cased word n-grams; a text shorter than n words is one gram (so two short texts still compare)."""
    words = text.lower().split()
    if len(words) < n:
        return frozenset([tuple(words)]) if words else frozenset()
    return frozenset(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    if not a and not b:
        return 1.0  # two empty texts are the same path
    return len(a & b) / len(a | b)


def ngram_similarity(n: int = 3) -> Callable[[_HasText, _HasText], float]:
    """Word n-gram Jaccard similarity between two records' `.text` (n-gram sets are cached per text)."""
    cache: dict[str, frozenset] = {}

    def grams(text: str) -> frozenset:
        if text not in cache:
            cache[text] = word_ngrams(text, n)
        return cache[text]

    return lambda a, b: jaccard(grams(a.text), grams(b.text))
