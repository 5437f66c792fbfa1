"""The backend protocol: what a model must offer to be served, and how it is declared.

A backend package declares models by calling ``registry.add(ModelSpec(...))`` from a
``register_models(registry, settings)`` function. Outrider's own models are registered exactly that way
(``backends/builtin.py``); third-party packages expose theirs through the ``outrider.models`` entry point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from outrider.core.messages import ChatMessage, GenerationParams, GenerationStream
from outrider.core.schema import ExtractionSchema
from outrider.core.usage import Price

ModelKind = Literal["encoder", "decoder"]


@runtime_checkable
class EncoderModel(Protocol):
    """A loaded schema-extraction model. Called from one worker thread at a time."""

    def prepare(self, schema: ExtractionSchema) -> Any:
        """Validate and compile a schema for this model; raise ``InvalidSchema`` when it cannot."""

    def extract(self, texts: list[str], prepared: list[Any], threshold: float) -> list[dict]:
        """Extract from each text with its prepared schema. Results keep confidences and spans."""

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens per text under the model's tokenizer."""


@runtime_checkable
class DecoderModel(Protocol):
    """A loaded text-generation model (local or upstream)."""

    def start(self, prompt: list[ChatMessage] | str, params: GenerationParams) -> GenerationStream:
        """Begin generating and return at once. Chat messages go through the model's chat template;
        a string is a raw completion prompt. Raise ``InvalidRequest`` for parameters it cannot honour."""


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
    load: Callable[[], EncoderModel | DecoderModel]  # blocking; the registry runs it in a worker thread
    check: Callable[[], Availability] = field(default=lambda: Availability(True))
    fine_tunable: bool = False
    price: Price = field(default_factory=Price)
    owned_by: str = "outrider"
    training_job_id: str | None = None
