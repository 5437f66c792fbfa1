"""Native routes: parse, call a service, render."""

from __future__ import annotations

import asyncio
from datetime import datetime

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from outrider.api.deps import principal, rate_limited, services
from outrider.api.disconnect import unless_disconnected
from outrider.api.paging import offset_query
from outrider.app_state import Services
from outrider.services.accounts import Principal
from outrider.services.recording import CallContext
from outrider.storage.queries.inferences import InferenceFilter

from . import conversion as conv
from .schemas import (
    BaseModelList,
    BaseModelOut,
    FeedbackIn,
    FeedbackOut,
    InferenceListOut,
    InferenceRecordOut,
    InferenceRequest,
    InferenceResponse,
    ModelHealth,
    ModelList,
    ModelOut,
)

router = APIRouter(tags=["native"])


@router.post("/inference", response_model=InferenceResponse, response_model_exclude_unset=True)
async def run_inference(
    body: InferenceRequest,
    request: Request,
    who: Principal = Depends(rate_limited("inference")),
    svc: Services = Depends(services),
) -> JSONResponse:
    ctx = CallContext(who, "native", body.model_id, store=body.store, project_id=body.project_id)
    if body.task == "generate":
        # A client that gives up stops the generation: recorded ``cancelled``, charged for what was produced.
        outcome = await unless_disconnected(request, svc.generation.generate(ctx, conv.to_generation(body)))
        response = conv.generation_response(outcome)
    else:
        response = conv.extraction_response(await svc.extraction.extract(ctx, conv.to_extraction(body)))
    # Already a validated model: render it directly instead of letting FastAPI validate it a second time.
    return JSONResponse(response.model_dump(mode="json", exclude_unset=True))


@router.get("/base-models", response_model=BaseModelList)
async def base_models(_: Principal = Depends(principal), svc: Services = Depends(services)) -> BaseModelList:
    specs = [s for s in svc.registry.specs() if s.fine_tunable]
    checks = await asyncio.gather(*(asyncio.to_thread(s.check) for s in specs))
    return BaseModelList(
        models=[
            BaseModelOut(
                id=s.id,
                task_family=s.kind,
                source=s.source,
                description=s.description,
                available=c.available,
                unavailable_reason=c.reason,
            )
            for s, c in zip(specs, checks, strict=True)
        ]
    )


@router.get("/models", response_model=ModelList)
async def list_models(who: Principal = Depends(principal), svc: Services = Depends(services)) -> ModelList:
    return ModelList(data=[conv.model_out(s) for s in await svc.training.models_for(who.account.id)])


@router.get("/models/{model_id:path}/health", response_model=ModelHealth)
async def model_health(
    model_id: str, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> ModelHealth:
    # Resolve as the caller sees it first: another account's fine-tune is a 404, and is never loaded for it.
    await svc.training.model_for(model_id, who.account.id, "GET /models")
    status, reason = await svc.registry.health(model_id)
    return ModelHealth(model=model_id, status=status, reason=reason)


@router.get("/models/{model_id:path}", response_model=ModelOut)
async def get_model(model_id: str, who: Principal = Depends(principal), svc: Services = Depends(services)) -> ModelOut:
    return conv.model_out(await svc.training.model_for(model_id, who.account.id, "GET /models"))


@router.get("/inferences", response_model=InferenceListOut)
async def list_inferences(
    limit: int = Query(50, ge=1, le=500),
    offset: int = offset_query(),
    model_id: str | None = None,
    task: str | None = None,
    project_id: str | None = None,
    training_job_id: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    min_latency_ms: float | None = Query(None, ge=0),
    max_latency_ms: float | None = Query(None, ge=0),
    who: Principal = Depends(principal),
    svc: Services = Depends(services),
) -> InferenceListOut:
    f = InferenceFilter(
        account_id=who.account.id,
        model_id=model_id,
        task=task,
        project_id=project_id,
        training_job_id=training_job_id,
        status=status,
        since=since,
        until=until,
        min_latency_ms=min_latency_ms,
        max_latency_ms=max_latency_ms,
    )
    records, total = await svc.history.list(f, limit=limit, offset=offset)
    return InferenceListOut(inferences=[conv.record_out(r) for r in records], total=total, limit=limit, offset=offset)


@router.get("/inferences/{inference_id}", response_model=InferenceRecordOut)
async def get_inference(
    inference_id: str, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> InferenceRecordOut:
    return conv.record_out(await svc.history.get(who, inference_id))


@router.post("/inferences/{inference_id}/feedback", response_model=FeedbackOut)
async def post_feedback(
    inference_id: str, body: FeedbackIn, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> FeedbackOut:
    feedback = await svc.history.feedback(
        who, inference_id, verdict=body.verdict, corrected_output=body.corrected_output, notes=body.notes
    )
    return FeedbackOut(**feedback.__dict__)
