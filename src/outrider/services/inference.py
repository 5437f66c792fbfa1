"""Inference use cases: schema extraction and generation, recorded in history.

Surfaces convert their requests to ``ExtractionRequest`` / ``GenerationRequest`` and render the
outcomes; everything else (validation against limits, model resolution, batching, usage, cost,
history) happens here, the same for every surface.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from outrider.backends.base import ModelSpec
from outrider.backends.registry import ModelRegistry
from outrider.backends.results import shape_result
from outrider.config import Settings
from outrider.core.errors import BackendError, InvalidRequest, OutriderError
from outrider.core.ids import new_id
from outrider.core.messages import ChatMessage, GenerationParams, GenerationResult
from outrider.core.schema import ExtractionSchema
from outrider.core.usage import Usage
from outrider.services.accounts import Principal
from outrider.storage.db import Database
from outrider.storage.queries import inferences as q
from outrider.storage.records import NewInference

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractionRequest:
    model_id: str
    texts: list[str]
    schema: ExtractionSchema
    threshold: float = 0.5
    include_confidence: bool = False
    include_spans: bool = False
    batch: bool = False  # the caller sent a list: answer with a list
    store: bool = True
    project_id: str | None = None
    surface: str = "native"


@dataclass(frozen=True)
class ExtractionOutcome:
    inference_id: str | None
    model_id: str
    model_used: str
    result: dict | list[dict]
    latency_ms: float
    usage: Usage


@dataclass(frozen=True)
class GenerationRequest:
    model_id: str
    messages: list[ChatMessage]
    params: GenerationParams
    store: bool = True
    project_id: str | None = None
    surface: str = "native"


@dataclass(frozen=True)
class GenerationOutcome:
    inference_id: str | None
    model_id: str
    model_used: str
    result: GenerationResult
    latency_ms: float
    usage: Usage


class InferenceService:
    def __init__(self, settings: Settings, db: Database, registry: ModelRegistry) -> None:
        self.settings = settings
        self.db = db
        self.registry = registry

    def _check_texts(self, texts: list[str]) -> None:
        if not texts:
            raise InvalidRequest("text must not be empty", param="text")
        if len(texts) > self.settings.max_batch_texts:
            raise InvalidRequest(
                f"at most {self.settings.max_batch_texts} texts per request, got {len(texts)}", param="text"
            )
        for index, text in enumerate(texts):
            if not text.strip():
                raise InvalidRequest(f"text[{index}] is empty", param="text")
            if len(text) > self.settings.max_text_chars:
                raise InvalidRequest(
                    f"text[{index}] has {len(text)} characters; the limit is {self.settings.max_text_chars}",
                    param="text",
                )

    def _resolve(self, model_id: str, kind: str) -> ModelSpec:
        spec = self.registry.resolve(model_id)
        if spec.kind != kind:
            hint = "send a 'schema'" if spec.kind == "encoder" else "send 'task': 'generate' with 'messages'"
            raise InvalidRequest(f"model '{model_id}' is a {spec.kind} model: {hint}", param="model_id")
        return spec

    async def extract(self, principal: Principal, request: ExtractionRequest) -> ExtractionOutcome:
        self._check_texts(request.texts)
        if not 0.0 <= request.threshold <= 1.0:
            raise InvalidRequest("threshold must be between 0 and 1", param="threshold")
        spec = self._resolve(request.model_id, "encoder")
        started = time.perf_counter()
        record_input = {
            "text": request.texts if request.batch else request.texts[0],
            "schema": request.schema.model_dump(exclude_none=True),
            "threshold": request.threshold,
        }
        try:
            loaded = await self.registry.get(spec)
            prepared = loaded.model.prepare(request.schema)
            output = await loaded.batcher.extract(request.texts, [prepared] * len(request.texts), request.threshold)
        except OutriderError as exc:
            if exc.status_code >= 500:
                await self._record_failure(principal, request, spec, "extract", record_input, started, exc)
            raise
        except Exception as exc:
            log.exception("extraction with %s failed", spec.id)
            error = BackendError(f"model '{spec.id}' failed during extraction: {type(exc).__name__}")
            await self._record_failure(principal, request, spec, "extract", record_input, started, error)
            raise error from exc
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
        latency_ms = (time.perf_counter() - started) * 1000
        prompt_tokens = sum(output.token_counts)
        usage = Usage(prompt_tokens, 0, spec.price.cost_micro_usd(prompt_tokens, 0))
        inference_id = await self._record(principal, request, spec, "extract", record_input, result, latency_ms, usage)
        return ExtractionOutcome(inference_id, request.model_id, spec.id, result, latency_ms, usage)

    async def generate(self, principal: Principal, request: GenerationRequest) -> GenerationOutcome:
        if not request.messages:
            raise InvalidRequest("messages must not be empty", param="messages")
        if not 1 <= request.params.max_tokens <= self.settings.max_new_tokens_limit:
            raise InvalidRequest(
                f"max_tokens must be between 1 and {self.settings.max_new_tokens_limit}", param="max_tokens"
            )
        spec = self._resolve(request.model_id, "decoder")
        started = time.perf_counter()
        record_input = {
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.params.max_tokens,
            "temperature": request.params.temperature,
        }
        try:
            loaded = await self.registry.get(spec)
            async with loaded.lock:
                result = await asyncio.get_running_loop().run_in_executor(
                    self.registry.executor, loaded.model.generate, request.messages, request.params
                )
        except OutriderError as exc:
            if exc.status_code >= 500:
                await self._record_failure(principal, request, spec, "generate", record_input, started, exc)
            raise
        except Exception as exc:
            log.exception("generation with %s failed", spec.id)
            error = BackendError(f"model '{spec.id}' failed during generation: {type(exc).__name__}")
            await self._record_failure(principal, request, spec, "generate", record_input, started, error)
            raise error from exc
        latency_ms = (time.perf_counter() - started) * 1000
        usage = Usage(
            result.prompt_tokens,
            result.completion_tokens,
            spec.price.cost_micro_usd(result.prompt_tokens, result.completion_tokens),
        )
        output = {"completion": result.text, "finish_reason": result.finish_reason}
        inference_id = await self._record(principal, request, spec, "generate", record_input, output, latency_ms, usage)
        return GenerationOutcome(inference_id, request.model_id, spec.id, result, latency_ms, usage)

    # -- history ------------------------------------------------------------
    async def _record(
        self,
        principal: Principal,
        request: ExtractionRequest | GenerationRequest,
        spec: ModelSpec,
        task: str,
        record_input: Any,
        output: Any,
        latency_ms: float,
        usage: Usage,
        *,
        error: OutriderError | None = None,
    ) -> str | None:
        if not request.store:
            return None
        new = NewInference(
            account_id=principal.account.id,
            api_key_id=principal.key.id,
            surface=request.surface,
            model_id=request.model_id,
            model_used=spec.id,
            task=task,
            input=record_input,
            output=output,
            status="error" if error else "success",
            error_type=error.code if error else None,
            error_message=error.message if error else None,
            latency_ms=round(latency_ms, 3),
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost_micro_usd=usage.cost_micro_usd,
            project_id=request.project_id,
            training_job_id=spec.training_job_id,
        )
        inference_id = new_id("inf")

        def write() -> None:
            with self.db.session() as s:
                q.insert_inference(s, new, inference_id=inference_id)

        await asyncio.to_thread(write)
        return inference_id

    async def _record_failure(
        self,
        principal: Principal,
        request: ExtractionRequest | GenerationRequest,
        spec: ModelSpec,
        task: str,
        record_input: Any,
        started: float,
        error: OutriderError,
    ) -> None:
        latency_ms = (time.perf_counter() - started) * 1000
        try:
            await self._record(principal, request, spec, task, record_input, None, latency_ms, Usage(0, 0), error=error)
        except Exception:  # the original error matters more than a failed history write
            log.exception("could not record a failed inference")
