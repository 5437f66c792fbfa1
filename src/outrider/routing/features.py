"""Cheap surface features of a prompt, and which part of a conversation routing looks at.

The embedding says what a prompt is about; these say how it looks: code fences and code punctuation,
math symbols, non-Latin script (a translation hint), questions, steps and constraints (complexity hints),
length. Each is scaled to about [0, 1] so the classifier can weigh them next to the embedding. All work
on a bounded snippet so a 100,000-character prompt costs what a 2,000-character one does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from outrider.core.messages import ChatMessage

FEATURES_VERSION = 1  # bump when a feature's definition changes (cached classifier fits depend on it)
FEATURE_NAMES: tuple[str, ...] = (
    "log_tokens",
    "code_fence",
    "code_density",
    "math_density",
    "non_ascii",
    "questions",
    "lines",
    "list_items",
    "constraints",
    "very_short",
)
SNIPPET_CHARS = 2000

_CODE = re.compile(
    r"[{}();=<>\[\]]|\b(?:def|function|class|import|return|const|let|var|public|void|fn|SELECT|FROM|WHERE)\b"
)
_MATH = re.compile(r"[0-9+\-*/^=√∫∑π²³≤≥±]")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)]|[a-z][.)])\s", re.MULTILINE)
_CONSTRAINT = re.compile(
    r"\b(?:and|include|with|must|should|keep|ensure|then|also|each|every|under|without)\b", re.IGNORECASE
)


@dataclass(frozen=True)
class PromptView:
    """What routing reads of a conversation: the last user turn, and the system prompt as a weaker hint."""

    text: str
    system: str


def prompt_view(messages: Sequence[ChatMessage]) -> PromptView:
    # The last user message carries the current ask; earlier turns are history the task need not follow.
    text = next((m.content for m in reversed(messages) if m.role == "user"), "")
    if not text and messages:
        text = messages[-1].content
    system = "\n".join(m.content for m in messages if m.role == "system")
    return PromptView(text=text, system=system)


def snippet(text: str) -> str:
    """Head and tail of a long text: the instruction is usually at one end of a pasted document."""
    if len(text) <= SNIPPET_CHARS:
        return text
    head = SNIPPET_CHARS * 3 // 4
    return text[:head] + "\n" + text[-(SNIPPET_CHARS - head) :]


def surface_features(text: str, n_tokens: int) -> np.ndarray:
    """The FEATURE_NAMES values for a prompt whose full length is ``n_tokens`` tokens."""
    part = snippet(text)
    n_chars = max(len(part), 1)
    n_words = max(len(part.split()), 1)
    non_ascii = (len(part) - len(part.encode("ascii", "ignore"))) / n_chars  # C speed, no Python loop
    return np.array(
        [
            math.log1p(n_tokens) / 5,
            1.0 if "```" in part else 0.0,
            min(len(_CODE.findall(part)) / n_words, 1.0),
            min(len(_MATH.findall(part)) / n_chars * 5, 1.0),
            min(non_ascii * 5, 1.0),
            min(part.count("?"), 3) / 3,
            min(part.count("\n"), 20) / 20,
            min(len(_LIST_ITEM.findall(part)), 10) / 10,
            min(len(_CONSTRAINT.findall(part)), 15) / 15,
            1.0 if n_words <= 4 else 0.0,
        ],
        dtype=np.float32,
    )
