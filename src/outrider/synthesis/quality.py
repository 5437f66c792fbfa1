"""Checks on what a teacher produced, before anything is kept: entity location, text hygiene, validation.

A teacher (a weak local one above all) returns entity *strings*; offsets are never taken from it. They are
found here, in the text, at word boundaries, so every kept span really occurs where it says it does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from outrider.datasets.formats import validate_example

# Markup a plain-text example never needs: what a small model emits when it drifts into JSON, templates or
# markdown ("[company's name]", "{{name}}", "**bold**"). Kept out by the constrained-decoding patterns and
# rejected here for teachers whose output is not constrained.
BANNED_CHARS = "{}[]<>\\|*~`"
_PLACEHOLDER = re.compile(r"[{}\[\]<>|*~`]|\\")
_SENTENCE_END = re.compile(r"[.!?…][\"')]*(?=\s|$)")
_ENDS_SENTENCE = re.compile(r"[.!?…][\"')]*$")
_WORD = re.compile(r"\w+")
_SPACES = re.compile(r"\s+")
_DIGIT_RUN = re.compile(r"\d{12,}")
_SYMBOL_RUN = re.compile(r"[^\w\s]{5,}")
_PROMPT_ECHO = re.compile(r"\bjson\b", re.IGNORECASE)
_VALUE_TRIM = " \t,;:-'&/"
MIN_TEXT_WORDS = 4
MAX_WORD_CHARS = 30
MAX_TOKEN_CHARS = 40  # between spaces: URLs fit, run-together sentences do not
MAX_VALUE_CHARS = 60
MAX_VALUE_WORDS = 5


@dataclass(frozen=True)
class Mention:
    """An entity string the teacher said the text contains, with its label."""

    text: str
    label: str


def clean_text(text: str) -> str:
    """Collapse runs of whitespace (a small model pads with them) and strip the ends."""
    return _SPACES.sub(" ", text).strip()


def clean_value(value: str) -> str:
    """An entity value as it should appear in text: single-spaced, without dangling separators."""
    return clean_text(value).strip(_VALUE_TRIM).strip()


def value_problem(value: str, label: str, context: tuple[str, ...] = ()) -> str | None:
    """Why an entity value cannot be used (a reject reason), or None. ``context``: phrases of the request (the
    domain, the topic) that a weak teacher echoes back as a "company" or "product"."""
    if len(value) < 2 or not _WORD.search(value):
        return "invalid_value"
    if len(value) > MAX_VALUE_CHARS or len(value.split()) > MAX_VALUE_WORDS:
        return "invalid_value"
    folded = value.casefold()
    if folded == label.casefold() or _PLACEHOLDER.search(value):
        return "invalid_value"  # the label's own name ("person": "Person") or markup is not an entity
    if any(folded in c.casefold() or c.casefold() in folded for c in context if c):
        return "invalid_value"  # "company": "Tech Industry" for the domain "tech industry news"
    words = value.split()
    if len(words) >= 4 and sum(w[:1].isupper() or w[:1].isdigit() for w in words) * 3 <= len(words):
        return "invalid_value"  # a phrase or a sentence ("Buy a nice house today"), not a name
    return None


def text_problem(text: str, *, allow_markup: bool = False) -> str | None:
    """Why a text cannot be an example (a reject reason), or None."""
    if not text.strip():
        return "empty_text"
    if not allow_markup and _PLACEHOLDER.search(text):
        return "placeholder"
    words = _WORD.findall(text)
    if len(words) < MIN_TEXT_WORDS:
        return "too_short"
    if (
        max(len(word) for word in words) > MAX_WORD_CHARS
        or max(len(token) for token in text.split()) > MAX_TOKEN_CHARS
        or _DIGIT_RUN.search(text)
        or _SYMBOL_RUN.search(text)
    ):
        return "garbled"  # digit or emoji runs, run-together words: a small model lost in its own output
    if _PROMPT_ECHO.search(text):
        return "prompt_echo"  # "Here's the JSON we created: ..." talks about the request, not the domain
    return None


def trim_to_sentence(text: str, keep: int = 0) -> str:
    """Cut a text that was stopped mid-sentence back to its last complete sentence, but never before
    character ``keep`` (the end of the last entity); a text with no sentence end past ``keep`` stays whole."""
    if _ENDS_SENTENCE.search(text):
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text) if m.end() >= keep]
    return text[: ends[-1]] if ends else text


def _occurrences(text: str, value: str) -> list[tuple[int, int]]:
    """Where ``value`` occurs in ``text`` as whole words: exact case first, else ignoring case."""
    for flags in (0, re.IGNORECASE):
        # Boundaries only where the value itself starts or ends with a word character: "Apple" must not match
        # inside "Pineapple", while "$5" or "C++" still match next to a space.
        left = r"(?<!\w)" if value[:1].isalnum() or value[:1] == "_" else ""
        right = r"(?!\w)" if value[-1:].isalnum() or value[-1:] == "_" else ""
        found = [(m.start(), m.end()) for m in re.finditer(left + re.escape(value) + right, text, flags)]
        if found:
            return found
    return []


def locate_entities(text: str, mentions: Iterable[Mention]) -> tuple[list[dict], list[Mention]]:
    """Character spans for every occurrence of each mention, as NER entities sorted by start; plus the
    mentions found nowhere. Overlaps are resolved in favour of the longer span (then the earlier one)."""
    candidates: list[tuple[int, int, str]] = []
    missing: list[Mention] = []
    for mention in mentions:
        value = mention.text.strip()
        spans = _occurrences(text, value) if value else []
        if not spans:
            missing.append(mention)
        candidates.extend((start, end, mention.label) for start, end in spans)
    taken: list[tuple[int, int, str]] = []
    for start, end, label in sorted(candidates, key=lambda c: (-(c[1] - c[0]), c[0])):
        if all(end <= s or start >= e for s, e, _ in taken):
            taken.append((start, end, label))
    entities = [{"start": s, "end": e, "label": label, "text": text[s:e]} for s, e, label in sorted(taken)]
    return entities, missing


def validation_problem(task_type: str, example: dict, labels: list[str] | None) -> str | None:
    """The dataset format's own validator (what an upload would check), mapped to a reject reason."""
    message = validate_example(task_type, example, labels)
    if message is None:
        return None
    if "is not one of the labels" in message:
        return "unknown_label"
    if "does not equal text" in message or "start < end" in message:
        return "span_not_in_text"
    return "invalid_example"
