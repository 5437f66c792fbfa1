"""Exact and near-duplicate detection: what counts as a repeat, and that LSH finds what brute force finds."""

from __future__ import annotations

import random

from outrider.synthesis.dedup import NEAR_DUPLICATE_THRESHOLD, DuplicateIndex, jaccard, shingles


def test_exact_duplicates_ignore_case_punctuation_and_spacing():
    index = DuplicateIndex()
    assert index.add("The card arrived late!") is None
    assert index.add("the card  arrived late") == "duplicate"
    assert index.add("THE CARD ARRIVED LATE.") == "duplicate"
    assert len(index) == 1


def test_small_edits_are_near_duplicates_and_different_texts_are_not():
    index = DuplicateIndex()
    assert index.add("John Smith is the chief executive officer of Acme Corporation in Boston.") is None
    assert index.check("John Smith is the chief executive officer of Acme Corporation in Denver.") == "near_duplicate"
    assert index.check("John Smith is the chief executive officer of the Acme Corporation, Boston.") == "near_duplicate"
    # Same topic and some shared words, but a different sentence: kept.
    assert index.check("Acme Corporation opened a new office in Boston last week.") is None
    assert index.check("My card payment was declined twice at the grocery store.") is None
    assert len(index) == 1  # check() never remembers


def test_lsh_agrees_with_brute_force():
    rng = random.Random(7)
    words = [
        "bank",
        "card",
        "payment",
        "transfer",
        "account",
        "fee",
        "loan",
        "app",
        "login",
        "branch",
        "rate",
        "cash",
        "money",
        "limit",
    ]
    bases = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(60)]
    texts = []
    for base in bases:  # each base sentence, plus variants with one or three words changed
        texts.append(base)
        for changes in (1, 3):
            tokens = base.split()
            for _ in range(changes):
                tokens[rng.randrange(len(tokens))] = rng.choice(words)
            texts.append(" ".join(tokens))
    index = DuplicateIndex(seed=3)
    kept: list[frozenset[str]] = []
    disagreements = 0
    for text in texts:
        grams = shingles(text)
        brute = any(jaccard(grams, other) >= NEAR_DUPLICATE_THRESHOLD for other in kept)
        lsh = index.add(text) is not None
        if not lsh:
            kept.append(grams)
        disagreements += brute != lsh
    assert len(kept) < len(texts)  # the set really contains near-duplicates
    assert disagreements == 0
