"""The backend protocol: what a model must offer to be served, and how it is declared.

A backend package declares models by calling ``registry.add(ModelSpec(...))`` from a
``register_models(registry, settings)`` function. Outrider's own models are registered exactly that way
(``backends/builtin.py``); third-party packages expose theirs through the ``outrider.models`` entry point.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from outrider.core.embeddings import EmbeddingRequest, EmbeddingResult
from outrider.core.messages import ChatMessage, GenerationParams, GenerationStream
from outrider.core.schema import ExtractionSchema
from outrider.core.usage import Price

ModelKind = Literal["encoder", "decoder", "embedding"]
Health = Literal["ready", "loading", "unavailable"]
# What models served here can do, by kind. Local decoders take tools through grammar-constrained decoding and
# see no images; upstream models declare theirs in the providers file.
LOCAL_CAPABILITIES: dict[str, tuple[str, ...]] = {
    "decoder": ("chat", "completions", "json", "tools"),
    "encoder": ("extraction",),
    "embedding": ("embeddings",),
}


@runtime_checkable
class EncoderModel(Protocol):
    """A loaded schema-extraction model. Called from one worker thread at a time."""

    def prepare(self, schema: ExtractionSchema) -> Any:
        """Validate and compile a schema for this model; raise ``InvalidSchema`` when it cannot."""

    def extract(self, texts: list[str], prepared: list[Any], threshold: float | None) -> list[dict]:
        """Extract from each text with its prepared schema. Results keep confidences and spans. ``threshold``
        None means the model's own defaults (a fine-tune's calibrated per-type thresholds, else 0.5)."""

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens per text under the model's tokenizer."""


@runtime_checkable
class DecoderModel(Protocol):
    """A loaded text-generation model (local or upstream)."""

    def start(self, prompt: list[ChatMessage] | str, params: GenerationParams) -> GenerationStream:
        """Begin generating and return at once. Chat messages go through the model's chat template;
        a string is a raw completion prompt. Raise ``InvalidRequest`` for parameters it cannot honour."""


@runtime_checkable
class EmbeddingModel(Protocol):
    """A model that turns texts into vectors, as the embedding service calls it: an upstream provider's model
    directly, a local one through its micro-batcher (``serving/embedding_batcher.py``)."""

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """One vector per text, in order. Raise ``InvalidRequest`` for what the model cannot honour (e.g. a
        ``dimensions`` it does not produce)."""


@runtime_checkable
class SentenceEncoder(Protocol):
    """A loaded local embedding model. Called from one worker thread at a time; the registry puts a
    micro-batcher in front of it, which is the ``EmbeddingModel`` the service calls."""

    dimensions: int
    max_tokens: int  # longer texts are truncated to their first ``max_tokens`` tokens

    def encode(self, texts: list[str]) -> tuple[list[list[float]], list[int]]:
        """One unit-length vector per text and the tokens each text was read as (after truncation)."""


@runtime_checkable
class HealthMonitor(Protocol):
    """Health of a model served by another server (an upstream provider): probed, cached, and behind a
    circuit breaker that real calls feed. Fallback logic asks ``is_available`` before trying a model."""

    async def health(self) -> tuple[Health, str | None]:
        """``ready`` or ``unavailable`` (with the reason), from a cached probe."""

    def is_available(self) -> bool:
        """False while the circuit is open after repeated failures (no call is sent then)."""

    @property
    def state(self) -> Literal["closed", "open", "half_open"]:
        """The circuit breaker's state (exported as a metric)."""

    @property
    def consecutive_failures(self) -> int:
        """Failed calls or probes since the last success (exported as a metric)."""

    def report_success(self) -> None: ...

    def report_failure(self, reason: str) -> None: ...


async def open_streams(streams: list[GenerationStream]) -> None:
    """Wait until each stream's backend has accepted the request, so that a failure before the first
    token (an upstream's 5xx, a timeout, a refused connection) is raised here, before a response starts.

    Local streams have nothing to wait for; upstream streams define ``opened()``. When one fails, the
    others are cancelled and the first error is raised."""
    waits = [stream.opened() for stream in streams if hasattr(stream, "opened")]
    if not waits:
        return
    try:
        outcomes = await asyncio.gather(*waits, return_exceptions=True)
    except asyncio.CancelledError:  # the client went away while upstreams were answering
        for stream in streams:
            stream.cancel()
        raise
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    if errors:
        for stream in streams:
            stream.cancel()
        raise errors[0]


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A servable model: everything the registry knows before loading it."""

    id: str
    kind: ModelKind
    source: str  # "builtin", "hub", "local", or a plugin's name
    description: str
    # Blocking; the registry runs it in a worker thread. Upstream embedding models return an ``EmbeddingModel``.
    load: Callable[[], EncoderModel | DecoderModel | SentenceEncoder | EmbeddingModel]
    check: Callable[[], Availability] = field(default=lambda: Availability(True))
    fine_tunable: bool = False
    price: Price = field(default_factory=Price)
    owned_by: str = "outrider"
    training_job_id: str | None = None
    # Set for LoRA adapters: they are served on the loaded instance of ``base_id`` (one base shared by all
    # its adapters); ``attach`` receives that loaded base and returns the adapter's servable model.
    base_id: str | None = None
    attach: Callable[[Any], EncoderModel | DecoderModel] | None = None
    # Set for models served elsewhere (upstream providers): they hold no memory here, so they stay out of
    # the LRU cache, and their health comes from the monitor instead of the load state.
    monitor: HealthMonitor | None = None
    context_length: int | None = None
    capabilities: tuple[str, ...] = ()
