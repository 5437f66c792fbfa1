"""Neutral embedding requests and results.

A surface converts its request (OpenAI's ``POST /v1/embeddings``) into an ``EmbeddingRequest`` and renders the
``EmbeddingResult``; embedding backends (the packaged MiniLM, upstream providers) see only these types.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EmbeddingRequest:
    texts: tuple[str, ...]
    dimensions: int | None = None  # None: the model's own size


@dataclass(frozen=True)
class EmbeddingResult:
    """One vector per input text, in order, and the input tokens the model read (after any truncation)."""

    vectors: list[list[float]]
    prompt_tokens: int

    @property
    def dimensions(self) -> int:
        return len(self.vectors[0]) if self.vectors else 0
