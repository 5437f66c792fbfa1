"""The answer schemas: they compile for constrained decoding, and their patterns mean what the checks expect."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from outrider.synthesis import prompts as p

VALUES = [("person", "Dr. Ana O'Neil"), ("company", "AT&T (US)"), ("product", "C++ 2.0 [beta]")]


def test_regex_literal_matches_only_the_value():
    for _, value in VALUES:
        assert re.fullmatch(p.regex_literal(value), value)
        assert not re.fullmatch(p.regex_literal(value), value + "x")


def test_ner_text_pattern_demands_one_of_the_values():
    pattern = p.ner_text_ask("news", "mergers", "a report", VALUES[:2]).schema["properties"]["text"]["pattern"]
    assert re.match(pattern, "Yesterday AT&T (US) bought a shop.")
    assert re.match(pattern, "Dr. Ana O'Neil spoke.")
    assert not re.match(pattern, "Nobody we know spoke.")
    assert not re.match(pattern, "Dr. Ana O'Neil spoke [citation].")  # markup stays out
    assert not re.match(pattern, "Dr. Ana O'Neil spoke.\nThen left.")  # one paragraph


def test_text_patterns():
    assert re.match(p.TEXT_PATTERN, "Where is my card?")
    assert not re.match(p.TEXT_PATTERN, " leading space")
    assert not re.match(p.TEXT_PATTERN, "Hi {name}")
    assert re.match(p.ANSWER_PATTERN, "First line.\nSecond line.")
    assert re.match(p.VALUE_PATTERN, "$5.99") and re.match(p.VALUE_PATTERN, "@acme_support")
    assert not re.match(p.VALUE_PATTERN, 'He said "hi"')


@pytest.fixture(scope="module")
def constraints(base_models_dir: Path):
    from transformers import AutoTokenizer

    from outrider.backends.constrained import JsonConstraintFactory
    from outrider.backends.decoder_hf import ensure_smollm2_base

    path = ensure_smollm2_base(base_models_dir / "HuggingFaceTB--SmolLM2-135M-Instruct")
    return JsonConstraintFactory(AutoTokenizer.from_pretrained(str(path)))


def test_every_schema_compiles_for_constrained_decoding(constraints):
    labels = [label for label, _ in VALUES]
    asks = [
        p.topics_ask("banking"),
        p.entity_values_ask("news", "mergers", "a report", labels),
        p.ner_text_ask("news", "mergers", "a report", VALUES),
        p.classification_ask("banking", "fees", "a complaint", "negative", ["positive", "negative"], []),
        p.decoder_ask("Answer banking questions.", None, "fees", "a direct question"),
    ]
    for ask in asks:
        constraints.for_schema(ask.schema)(max_tokens=ask.max_tokens)  # raises when llguidance refuses it
        assert "Answer with only this JSON" in ask.prompt
