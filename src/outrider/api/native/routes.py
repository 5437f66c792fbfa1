"""Native routes: parse, call a service, render."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from outrider.api.deps import CurrentPrincipal, InferenceCaller, ServicesDep
from outrider.api.disconnect import unless_disconnected
from outrider.api.paging import offset_query
from outrider.services.recording import CallContext
from outrider.storage.queries.inferences import InferenceFilter

from . import conversion as conv
from .schemas import (
    BaseModelList,
    FeedbackIn,
    FeedbackOut,
    HumanVerdict,
    InferenceListOut,
    InferenceRecordOut,
    InferenceRequest,
    InferenceResponse,
    JudgeIn,
    JudgementOut,
    JudgeVerdict,
    ModelHealth,
    ModelList,
    ModelOut,
)

router = APIRouter(tags=["native"])


@router.post("/inference", response_model=InferenceResponse, response_model_exclude_unset=True)
async def run_inference(
    body: InferenceRequest,
    request: Request,
    who: InferenceCaller,
    svc: ServicesDep,
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
async def base_models(_: CurrentPrincipal, svc: ServicesDep) -> BaseModelList:
    return BaseModelList(models=[conv.base_model_out(s, c) for s, c in await svc.catalog.base_models()])


@router.get("/models", response_model=ModelList)
async def list_models(who: CurrentPrincipal, svc: ServicesDep) -> ModelList:
    return ModelList(data=[conv.model_out(s) for s in await svc.catalog.models_for(who.account.id)])


@router.get("/models/{model_id:path}/health", response_model=ModelHealth)
async def model_health(model_id: str, who: CurrentPrincipal, svc: ServicesDep) -> ModelHealth:
    # As the caller sees it: another account's fine-tune is a 404, and is never loaded for it.
    status, reason = await svc.catalog.health(model_id, who.account.id)
    return ModelHealth(model=model_id, status=status, reason=reason, runtime=svc.catalog.runtime(model_id))


@router.get("/models/{model_id:path}", response_model=ModelOut)
async def get_model(model_id: str, who: CurrentPrincipal, svc: ServicesDep) -> ModelOut:
    return conv.model_out(await svc.catalog.model_for(model_id, who.account.id))


@router.get("/inferences", response_model=InferenceListOut)
async def list_inferences(
    who: CurrentPrincipal,
    svc: ServicesDep,
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
    human_verdict: HumanVerdict | None = Query(
        None, description="correct, incorrect, reviewed (either) or unreviewed (no feedback yet)."
    ),
    llmaj_verdict: JudgeVerdict | None = Query(
        None, description="pass, fail, uncertain, judged (any verdict) or unjudged (none, or the judge failed)."
    ),
    llmaj_score_min: float | None = Query(None, ge=0, le=1),
    llmaj_score_max: float | None = Query(None, ge=0, le=1),
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
        human_verdict=human_verdict,
        llmaj_verdict=llmaj_verdict,
        llmaj_score_min=llmaj_score_min,
        llmaj_score_max=llmaj_score_max,
    )
    records, total = await svc.history.list(f, limit=limit, offset=offset)
    return InferenceListOut(inferences=[conv.record_out(r) for r in records], total=total, limit=limit, offset=offset)


@router.get("/inferences/{inference_id}", response_model=InferenceRecordOut)
async def get_inference(inference_id: str, who: CurrentPrincipal, svc: ServicesDep) -> InferenceRecordOut:
    return conv.record_out(await svc.history.get(who, inference_id))


@router.post("/inferences/{inference_id}/feedback", response_model=FeedbackOut)
async def post_feedback(inference_id: str, body: FeedbackIn, who: CurrentPrincipal, svc: ServicesDep) -> FeedbackOut:
    feedback = await svc.history.feedback(
        who, inference_id, verdict=body.verdict, corrected_output=body.corrected_output, notes=body.notes
    )
    return FeedbackOut(**feedback.__dict__)


@router.post("/inferences/{inference_id}/judge", response_model=JudgementOut)
async def judge_inference(inference_id: str, body: JudgeIn, who: InferenceCaller, svc: ServicesDep) -> JudgementOut:
    """Have a decoder grade the record now (charged like any call); the verdict is kept on the record."""
    judgement = await svc.judging.judge(who, inference_id, body.judge_model)
    return conv.judgement_out(inference_id, judgement)
