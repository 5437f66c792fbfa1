"""Embeddings: validate against limits, resolve the model, reserve credit, embed, record.

A surface (OpenAI's ``POST /v1/embeddings``) converts its request to an ``EmbeddingRequest`` and renders the
``EmbeddingOutcome``. A local model is reached through its micro-batcher, an upstream model directly; both are
``EmbeddingModel``s. Usage is input tokens only (as every embedding API bills), priced with the model's input
price; the history record keeps the inputs and the vectors' count and size, not the vectors.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from outrider.backends.base import ModelSpec
from outrider.config import Settings
from outrider.core.embeddings import EmbeddingRequest, EmbeddingResult
from outrider.core.errors import BackendError, InvalidRequest, OutriderError
from outrider.core.usage import Usage
from outrider.services.billing import BillingService, Hold
from outrider.services.catalog import ModelCatalog
from outrider.services.recording import CallContext, Recorder

log = logging.getLogger(__name__)

# Special tokens a tokenizer may add around one text (BERT's [CLS] and [SEP], a BOS / EOS), with room to spare.
PER_TEXT_OVERHEAD_TOKENS = 8
TASK = "embed"


@dataclass(frozen=True)
class EmbeddingOutcome:
    inference_id: str | None
    model_used: str
    result: EmbeddingResult
    usage: Usage
    latency_ms: float


def token_bound(spec: ModelSpec, texts: tuple[str, ...]) -> int:
    """An upper bound on the tokens the model reads: each token covers at least one UTF-8 byte, plus special tokens;
    a local model reads at most its context length per text (it truncates)."""
    cap = spec.context_length if spec.monitor is None else None
    bounds = (len(text.encode()) + PER_TEXT_OVERHEAD_TOKENS for text in texts)
    return sum(min(bound, cap) if cap else bound for bound in bounds)


class EmbeddingService:
    def __init__(self, settings: Settings, catalog: ModelCatalog, recorder: Recorder, billing: BillingService) -> None:
        self.settings = settings
        self.catalog = catalog
        self.recorder = recorder
        self.billing = billing

    def _check(self, request: EmbeddingRequest) -> None:
        texts, limit = request.texts, self.settings.embedding_max_inputs
        if not texts:
            raise InvalidRequest("input must not be empty", param="input")
        if len(texts) > limit:
            raise InvalidRequest(f"at most {limit} inputs per request, got {len(texts)}", param="input")
        for index, text in enumerate(texts):
            if not text:
                raise InvalidRequest(f"input[{index}] is an empty string", param="input")
            if len(text) > self.settings.max_text_chars:
                raise InvalidRequest(
                    f"input[{index}] has {len(text)} characters; the limit is {self.settings.max_text_chars}",
                    param="input",
                )
        if request.dimensions is not None and request.dimensions < 1:
            raise InvalidRequest("dimensions must be at least 1", param="dimensions")

    async def embed(self, ctx: CallContext, request: EmbeddingRequest) -> EmbeddingOutcome:
        self._check(request)
        spec = await self.catalog.for_call(ctx.principal, ctx.model_id, "embedding", param="model")
        started = time.perf_counter()
        record_input = {"input": list(request.texts), "dimensions": request.dimensions}
        hold: Hold | None = None
        try:
            loaded = await self.catalog.load(spec)
            hold = await self.billing.reserve(ctx.principal, spec.price, token_bound(spec, request.texts), 0)
            result = await loaded.embedder.embed(request)
        except OutriderError as exc:
            if exc.status_code >= 500:
                await self.recorder.record_failure(ctx, spec, TASK, record_input, _ms_since(started), exc, hold=hold)
            await self.billing.release(hold)
            raise
        except Exception as exc:
            log.exception("embedding with %s failed", spec.id)
            error = BackendError(f"model '{spec.id}' failed while embedding: {type(exc).__name__}")
            await self.recorder.record_failure(ctx, spec, TASK, record_input, _ms_since(started), error, hold=hold)
            raise error from exc
        except BaseException:  # the client went away mid-call: free the reservation without awaiting here
            self.recorder.track(self.billing.release(hold))
            raise
        latency_ms = _ms_since(started)
        usage = Usage(result.prompt_tokens, 0, spec.price.cost_micro_usd(result.prompt_tokens, 0))
        output = {"embeddings": len(result.vectors), "dimensions": result.dimensions}
        inference_id = await self.recorder.record(ctx, spec, TASK, record_input, output, latency_ms, usage, hold=hold)
        return EmbeddingOutcome(inference_id, spec.id, result, usage, latency_ms)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
