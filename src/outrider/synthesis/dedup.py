"""Exact and near-duplicate detection over generated texts.

A weak teacher repeats itself with small edits ("John Smith is the CEO of Acme." / "... of Acme Corp."), so
exact matching is not enough. Texts are compared on the Jaccard similarity of their character 4-gram sets after
normalisation (case, punctuation, spacing). Comparing every pair would be quadratic in a job of thousands of
examples, so candidates come from MinHash locality-sensitive hashing (16 bands of 4 rows: a pair at the
default threshold of 0.75 shares a band with probability 0.998) and only candidates are compared exactly.
"""

from __future__ import annotations

import re
import zlib

import numpy as np

NEAR_DUPLICATE_THRESHOLD = 0.75
NGRAM = 4
BANDS, ROWS = 16, 4
_PRIME = (1 << 31) - 1
_NON_WORD = re.compile(r"[\W_]+")


def normalize(text: str) -> str:
    """Case-folded words separated by single spaces: punctuation and spacing never make texts differ."""
    return _NON_WORD.sub(" ", text.casefold()).strip()


def shingles(text: str, n: int = NGRAM) -> frozenset[str]:
    """Character n-grams of the normalised text (the whole text when it is shorter than n)."""
    norm = normalize(text)
    if len(norm) <= n:
        return frozenset([norm])
    return frozenset(norm[i : i + n] for i in range(len(norm) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


class DuplicateIndex:
    """Remembers accepted texts; says whether a new one repeats one of them exactly or nearly."""

    def __init__(self, threshold: float = NEAR_DUPLICATE_THRESHOLD, seed: int = 0) -> None:
        self.threshold = threshold
        rng = np.random.default_rng(seed)
        self._a = rng.integers(1, _PRIME, size=BANDS * ROWS, dtype=np.int64)
        self._b = rng.integers(0, _PRIME, size=BANDS * ROWS, dtype=np.int64)
        self._exact: set[str] = set()
        self._shingles: list[frozenset[str]] = []
        self._buckets: dict[tuple[int, bytes], list[int]] = {}

    def __len__(self) -> int:
        return len(self._shingles)

    def _bands(self, grams: frozenset[str]) -> list[tuple[int, bytes]]:
        hashes = np.fromiter((zlib.crc32(g.encode()) for g in grams), dtype=np.int64, count=len(grams)) % _PRIME
        # One min-hash per permutation h(x) = (a*x + b) mod p; a, x < 2^31 keeps a*x inside int64.
        signature = ((np.outer(hashes, self._a) + self._b) % _PRIME).min(axis=0)
        return [(band, signature[band * ROWS : (band + 1) * ROWS].tobytes()) for band in range(BANDS)]

    def check(self, text: str) -> str | None:
        """``"duplicate"``, ``"near_duplicate"``, or None when the text is new; does not remember it."""
        reason, _ = self._check(text)
        return reason

    def _check(self, text: str) -> tuple[str | None, tuple[frozenset[str], list[tuple[int, bytes]]]]:
        norm = normalize(text)
        grams = shingles(text)
        bands = self._bands(grams)
        if norm in self._exact:
            return "duplicate", (grams, bands)
        seen: set[int] = set()
        for key in bands:
            for other in self._buckets.get(key, ()):
                if other not in seen:
                    seen.add(other)
                    if jaccard(grams, self._shingles[other]) >= self.threshold:
                        return "near_duplicate", (grams, bands)
        return None, (grams, bands)

    def add(self, text: str) -> str | None:
        """Remember the text unless it repeats a remembered one; returns the reason it was refused, or None."""
        reason, (grams, bands) = self._check(text)
        if reason is not None:
            return reason
        index = len(self._shingles)
        self._shingles.append(grams)
        self._exact.add(normalize(text))
        for key in bands:
            self._buckets.setdefault(key, []).append(index)
        return None
