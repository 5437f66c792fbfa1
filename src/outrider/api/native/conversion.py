"""Native wire types <-> neutral request and outcome types."""

from __future__ import annotations

from typing import Any

from outrider.backends.base import Availability, ModelSpec
from outrider.core.messages import ChatMessage, GenerationParams
from outrider.core.schema import parse_schema
from outrider.core.usage import Usage
from outrider.services.extraction import ExtractionOutcome, ExtractionRequest
from outrider.services.generation import GenerationOutcome, GenerationRequest
from outrider.services.routing import RoutingOptions
from outrider.storage.records import Inference, Judgement

from .schemas import (
    BaseModelOut,
    FeedbackOut,
    InferenceRecordOut,
    InferenceRequest,
    InferenceResponse,
    JudgementOut,
    ModelOut,
    UsageOut,
)


def to_extraction(body: InferenceRequest) -> ExtractionRequest:
    texts = body.text if isinstance(body.text, list) else [body.text]
    return ExtractionRequest(
        model_id=body.model_id,
        texts=texts,
        schema=parse_schema(body.schema_),
        threshold=body.threshold,
        include_confidence=body.include_confidence,
        include_spans=body.include_spans,
        batch=isinstance(body.text, list),
    )


def to_generation(body: InferenceRequest) -> GenerationRequest:
    return GenerationRequest(
        model_id=body.model_id,
        messages=[ChatMessage(role=m.role, content=m.content) for m in body.messages or []],
        params=GenerationParams(
            max_tokens=body.max_tokens,
            temperature=body.temperature,
            top_p=body.top_p,
            stop=tuple(body.stop or ()),
            seed=body.seed,
            stream=False,  # the native surface answers generation in one JSON body
        ),
        routing=RoutingOptions.from_wire(body.routing),
    )


def usage_out(usage: Usage) -> UsageOut:
    return UsageOut(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cost=usage.cost_usd,
    )


def extraction_response(outcome: ExtractionOutcome) -> InferenceResponse:
    return InferenceResponse(
        type="encoder",
        inference_id=outcome.inference_id,
        model_id=outcome.model_id,
        model_used=outcome.model_used,
        latency_ms=round(outcome.latency_ms, 3),
        result=outcome.result,
        usage=usage_out(outcome.usage),
        input_tokens=outcome.usage.prompt_tokens,
        output_tokens=0,
    )


def generation_response(outcome: GenerationOutcome) -> InferenceResponse:
    return InferenceResponse(
        type="decoder",
        inference_id=outcome.inference_id,
        model_id=outcome.model_id,
        model_used=outcome.model_used,
        latency_ms=round(outcome.latency_ms, 3),
        completion=outcome.result.text,
        finish_reason=outcome.result.finish_reason,
        usage=usage_out(outcome.usage),
        input_tokens=outcome.usage.prompt_tokens,
        output_tokens=outcome.usage.completion_tokens,
        routing=outcome.routing,
    )


def record_out(record: Inference) -> InferenceRecordOut:
    feedback = record.feedback
    return InferenceRecordOut(
        inference_id=record.id,
        model_id=record.model_id,
        model_used=record.model_used,
        task=record.task,
        surface=record.surface,
        project_id=record.project_id,
        training_job_id=record.training_job_id,
        input=record.input,
        output=record.output,
        status=record.status,
        error_type=record.error_type,
        error_message=record.error_message,
        latency_ms=record.latency_ms,
        usage=usage_out(
            Usage(
                record.prompt_tokens,
                record.completion_tokens,
                record.cost_micro_usd,
                record.cache_read_tokens,
                record.cache_write_tokens,
            )
        ),
        created_at=record.created_at,
        feedback=FeedbackOut(**feedback.__dict__) if feedback else None,
        human_verdict=feedback.verdict if feedback else None,
        human_corrected_output=feedback.corrected_output if feedback else None,
        human_feedback_notes=feedback.notes if feedback else None,
        human_feedback_at=feedback.updated_at if feedback else None,
        **judgement_fields(record.judgement),
        routing=record.routing,
    )


def judgement_fields(judgement: Judgement | None) -> dict[str, Any]:
    if judgement is None:
        return {}
    return {
        "llmaj_verdict": judgement.verdict,
        "llmaj_score": judgement.score,
        "llmaj_reasoning": judgement.reasoning,
        "llmaj_judged_at": judgement.judged_at,
        "llmaj_judge_model": judgement.judge_model,
        "llmaj_error": judgement.error,
    }


def judgement_out(inference_id: str, judgement: Judgement) -> JudgementOut:
    fields = judgement_fields(judgement)
    fields.pop("llmaj_judge_model")
    return JudgementOut(inference_id=inference_id, judge_model=judgement.judge_model, **fields)


def model_out(spec: ModelSpec) -> ModelOut:
    return ModelOut(
        id=spec.id,
        task_family=spec.kind,
        source=spec.source,
        owned_by=spec.owned_by,
        description=spec.description,
        fine_tunable=spec.fine_tunable,
        price_input_per_mtok=spec.price.input_per_mtok,
        price_output_per_mtok=spec.price.output_per_mtok,
        price_cache_read_per_mtok=spec.price.cache_read,
        price_cache_write_per_mtok=spec.price.cache_write,
        context_length=spec.context_length,
        capabilities=list(spec.capabilities),
    )


def base_model_out(spec: ModelSpec, availability: Availability) -> BaseModelOut:
    return BaseModelOut(
        id=spec.id,
        task_family=spec.kind,
        source=spec.source,
        description=spec.description,
        available=availability.available,
        unavailable_reason=availability.reason,
    )
