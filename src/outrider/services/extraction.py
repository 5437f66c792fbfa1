"""Schema extraction: validate against limits, resolve the model, micro-batch, shape, record.

Every surface (native ``/inference``, the ``schema`` extension of the OpenAI and Anthropic surfaces)
converts its request to ``ExtractionRequest`` and renders the ``ExtractionOutcome``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from outrider.backends.results import shape_result
from outrider.config import Settings
from outrider.core.capabilities import VISION, capability_missing
from outrider.core.errors import BackendError, InvalidRequest, OutriderError
from outrider.core.messages import ChatMessage
from outrider.core.schema import ExtractionSchema, parse_schema
from outrider.core.usage import Usage
from outrider.services.billing import BillingService, Hold
from outrider.services.catalog import ModelCatalog
from outrider.services.recording import CallContext, Recorder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractionRequest:
    model_id: str
    texts: list[str]
    schema: ExtractionSchema
    # None: the model's own defaults (a fine-tune's calibrated per-type thresholds, else 0.5); a number
    # overrides them for every type whose schema item sets no threshold of its own
    threshold: float | None = None
    include_confidence: bool = False
    include_spans: bool = False
    batch: bool = False  # the caller sent a list: answer with a list


@dataclass(frozen=True)
class ExtractionOutcome:
    inference_id: str | None
    model_id: str
    model_used: str
    result: dict | list[dict]
    latency_ms: float
    usage: Usage


class ExtractionService:
    def __init__(self, settings: Settings, catalog: ModelCatalog, recorder: Recorder, billing: BillingService) -> None:
        self.settings = settings
        self.catalog = catalog
        self.recorder = recorder
        self.billing = billing

    def _check_texts(self, texts: list[str]) -> None:
        limits = self.settings
        if not texts:
            raise InvalidRequest("text must not be empty", param="text")
        if len(texts) > limits.max_batch_texts:
            raise InvalidRequest(f"at most {limits.max_batch_texts} texts per request, got {len(texts)}", param="text")
        for index, text in enumerate(texts):
            if not text.strip():
                raise InvalidRequest(f"text[{index}] is empty", param="text")
            if len(text) > limits.max_text_chars:
                raise InvalidRequest(
                    f"text[{index}] has {len(text)} characters; the limit is {limits.max_text_chars}", param="text"
                )

    async def extract_from_chat(
        self, ctx: CallContext, model_id: str, schema: Any, messages: list[ChatMessage]
    ) -> ExtractionOutcome:
        """The ``schema`` extension of the chat surfaces: extract from the last user message (text only)."""
        if any(m.images for m in messages):
            spec = await self.catalog.for_call(ctx.principal, model_id, "encoder", param="model")
            raise capability_missing(spec.id, spec.capabilities, [VISION])
        request = ExtractionRequest(model_id=model_id, texts=[last_user_text(messages)], schema=parse_schema(schema))
        return await self.extract(ctx, request)

    async def extract(self, ctx: CallContext, request: ExtractionRequest) -> ExtractionOutcome:
        self._check_texts(request.texts)
        if request.threshold is not None and not 0.0 <= request.threshold <= 1.0:
            raise InvalidRequest("threshold must be between 0 and 1", param="threshold")
        spec = await self.catalog.for_call(ctx.principal, request.model_id, "encoder", param="model_id")
        started = time.perf_counter()
        record_input = {
            "text": request.texts if request.batch else request.texts[0],
            "schema": request.schema.model_dump(exclude_none=True),
            "threshold": request.threshold,
        }
        hold: Hold | None = None
        try:
            loaded = await self.catalog.load(spec)
            prepared = loaded.model.prepare(request.schema)
            if spec.price.input_per_mtok and not ctx.principal.account.unlimited_credits:
                # Encoders are billed on input tokens only: the exact count is the reservation.
                tokens = sum(loaded.model.count_tokens(request.texts))
                hold = await self.billing.reserve(ctx.principal, spec.price, tokens, 0)
            output = await loaded.batcher.extract(request.texts, [prepared] * len(request.texts), request.threshold)
        except OutriderError as exc:
            if exc.status_code >= 500:
                await self.recorder.record_failure(
                    ctx, spec, "extract", record_input, _ms_since(started), exc, hold=hold
                )
            await self.billing.release(hold)
            raise
        except Exception as exc:
            log.exception("extraction with %s failed", spec.id)
            error = BackendError(f"model '{spec.id}' failed during extraction: {type(exc).__name__}")
            await self.recorder.record_failure(ctx, spec, "extract", record_input, _ms_since(started), error, hold=hold)
            raise error from exc
        except BaseException:  # the client went away mid-call: free the reservation without awaiting here
            self.recorder.track(self.billing.release(hold))
            raise
        shaped = [
            shape_result(
                raw,
                entities=prepared.entities,
                classifications=prepared.classifications,
                structures=prepared.structures,
                relations=prepared.relations,
                confidence=request.include_confidence,
                spans=request.include_spans,
            )
            for raw in output.results
        ]
        result: dict | list[dict] = shaped if request.batch else shaped[0]
        latency_ms = _ms_since(started)
        prompt_tokens = sum(output.token_counts)
        usage = Usage(prompt_tokens, 0, spec.price.cost_micro_usd(prompt_tokens, 0))
        inference_id = await self.recorder.record(
            ctx, spec, "extract", record_input, result, latency_ms, usage, hold=hold
        )
        return ExtractionOutcome(inference_id, request.model_id, spec.id, result, latency_ms, usage)


def last_user_text(messages: list[ChatMessage]) -> str:
    users = [m for m in messages if m.role == "user"]
    if not users:
        raise InvalidRequest("schema extraction needs a user message", param="messages")
    return users[-1].content


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
