"""Generation routes: queue a job, poll it, list, stop; label existing text. POSTs count against the
``generate`` rate-limit group; polling does not (it would eat the budget of the job it watches)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from outrider.api.deps import CurrentPrincipal, GenerateCaller, ServicesDep
from outrider.api.paging import offset_query
from outrider.app_state import Services
from outrider.services.accounts import Principal
from outrider.services.data_generation import GenerateRequest
from outrider.services.labeling import LabelingOutcome, LabelingRequest
from outrider.services.recording import CallContext

from .conversion import generation_job_out
from .schemas import (
    GenerateIn,
    GenerateOut,
    GenerationJobList,
    GenerationJobOut,
    LabelExistingIn,
    LabelExistingOut,
    LabelUsage,
)

router = APIRouter(tags=["generate"])


@router.post("/generate", response_model=GenerateOut)
async def start_generation(body: GenerateIn, who: GenerateCaller, svc: ServicesDep) -> GenerateOut:
    job = await svc.data_generation.submit(who, GenerateRequest(**body.model_dump()))
    return GenerateOut(job_id=job.id, status=job.status)


@router.get("/generate/jobs", response_model=GenerationJobList)
async def list_generation_jobs(
    who: CurrentPrincipal,
    svc: ServicesDep,
    limit: int = Query(50, ge=1, le=500),
    offset: int = offset_query(),
) -> GenerationJobList:
    statuses, total = await svc.data_generation.list_statuses(who.account.id, limit=limit, offset=offset)
    return GenerationJobList(jobs=[generation_job_out(s) for s in statuses], total=total, limit=limit, offset=offset)


@router.get("/generate/jobs/{job_id}", response_model=GenerationJobOut)
async def get_generation_job(job_id: str, who: CurrentPrincipal, svc: ServicesDep) -> GenerationJobOut:
    return generation_job_out(await svc.data_generation.status(who.account.id, job_id))


@router.post("/generate/jobs/{job_id}/stop", response_model=GenerationJobOut)
async def stop_generation_job(job_id: str, who: GenerateCaller, svc: ServicesDep) -> GenerationJobOut:
    """Ask the job to stop: it keeps what it generated (the version becomes ``partial``)."""
    return generation_job_out(await svc.data_generation.stop(who.account.id, job_id))


def _labeled(outcome: LabelingOutcome) -> LabelExistingOut:
    usage = outcome.usage
    return LabelExistingOut(
        model_id=outcome.model_id,
        model_used=outcome.model_used,
        results=outcome.results,
        latency_ms=round(outcome.latency_ms, 3),
        usage=LabelUsage(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
            cost=usage.cost_usd,
        ),
        dataset_name=outcome.dataset_name,
        dataset_version=outcome.dataset_version,
    )


async def _label(task_type: str, body: LabelExistingIn, who: Principal, svc: Services) -> LabelExistingOut:
    request = LabelingRequest(task_type=task_type, **body.model_dump())
    ctx = CallContext(who, "native", request.model_id or svc.settings.default_labeling_model)
    return _labeled(await svc.labeling.label(ctx, request))


@router.post("/generate/ner/label-existing", response_model=LabelExistingOut)
async def label_existing_ner(body: LabelExistingIn, who: GenerateCaller, svc: ServicesDep) -> LabelExistingOut:
    """Annotate each input with entity spans (start, end, text, label, confidence) in one batched pass."""
    return await _label("ner", body, who, svc)


@router.post("/generate/classification/label-existing", response_model=LabelExistingOut)
async def label_existing_classification(
    body: LabelExistingIn, who: GenerateCaller, svc: ServicesDep
) -> LabelExistingOut:
    """Classify each input into one of ``labels`` with a confidence, in one batched pass."""
    return await _label("classification", body, who, svc)
