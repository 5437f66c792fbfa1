"""Neutral chat messages, generation parameters, streamed chunks and results.

Every surface converts its request into ``ChatMessage`` + ``GenerationParams`` and renders
``GenerationChunk`` / ``GenerationResult`` back; backends never see a surface's wire format.

A message's ``content`` is always its text. A message that also carries images (``ImagePart``) keeps its parts in
order in ``parts`` (text and images as sent); backends that read only text keep reading ``content``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "stop_sequence", "cancelled"]


@dataclass(frozen=True)
class TextPart:
    text: str


@dataclass(frozen=True)
class ImagePart:
    """One image, by URL (``url``, http or https: passed on, never fetched here) or inline (``data``: validated
    base64 of ``media_type``, ``byte_size`` bytes once decoded). Built by ``core/images.py``."""

    url: str | None = None
    media_type: str | None = None
    data: str | None = None
    byte_size: int = 0
    detail: str | None = None  # OpenAI's resolution hint (auto, low, high); other formats have none

    @property
    def data_url(self) -> str:
        """The image as OpenAI's ``image_url.url``: the URL, or a ``data:`` URL of the inline bytes."""
        return self.url if self.url is not None else f"data:{self.media_type};base64,{self.data}"


ContentPart = TextPart | ImagePart


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str
    parts: tuple[ContentPart, ...] = ()  # set only when the message carries images: text and images in order

    @property
    def images(self) -> tuple[ImagePart, ...]:
        return tuple(p for p in self.parts if isinstance(p, ImagePart))


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False  # report the chosen token's log-probability
    top_logprobs: int = 0  # and this many alternatives per position
    json_mode: bool = False  # constrain the output to a JSON object
    json_schema: dict[str, Any] | None = None  # constrain the output to JSON valid under this schema
    stream: bool = True  # the caller reads tokens as they come; False: only the whole answer is wanted


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class GenerationChunk:
    """Newly produced text (may be empty when a token completes no character yet)."""

    text: str
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class GenerationResult:
    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    stop_sequence: str | None = None
    logprobs: tuple[TokenLogprob, ...] = ()
    extra: dict = field(default_factory=dict)
    cache_read_tokens: int = 0  # of prompt_tokens: read from the provider's prompt cache
    cache_write_tokens: int = 0  # of prompt_tokens: written to it


class GenerationStream(Protocol):
    """One running generation: iterate for chunks as they are produced; ``result`` once iteration ends."""

    def __aiter__(self) -> AsyncIterator[GenerationChunk]: ...

    @property
    def result(self) -> GenerationResult: ...

    def cancel(self) -> None:
        """Stop generating (the client went away); the result then has finish_reason 'cancelled'."""

    async def wait_result(self) -> GenerationResult:
        """The final result, also when iteration stopped early: what was produced until the stop."""
