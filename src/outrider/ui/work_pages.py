"""Work pages: the playground, inference history (list and record), datasets and training jobs. Lists and
records are read through the services here; the page scripts run models, give feedback, upload and start
or stop jobs through the JSON API."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse

from outrider.api.data.conversion import dataset_out, generation_job_out
from outrider.api.deps import ServicesDep
from outrider.api.native.conversion import record_out
from outrider.api.training.conversion import checkpoint_out, job_out
from outrider.core.errors import OutriderError
from outrider.storage.queries.inferences import InferenceFilter

from .auth import PageUser
from .render import ListFilters, PageNo, error_page, page, pager

router = APIRouter(prefix="/ui", include_in_schema=False)

HISTORY_PAGE = 25
EXAMPLES_PAGE = 20
JOBS_PAGE = 50
GENERATION_JOBS_SHOWN = 10


@router.get("/playground", response_class=HTMLResponse)
async def playground(request: Request, who: PageUser, svc: ServicesDep) -> HTMLResponse:
    models = await svc.catalog.models_for(who.account.id)
    encoders = [m.id for m in models if m.kind == "encoder"]
    decoders = [m.id for m in models if m.kind == "decoder"]
    return page(request, who, "playground.html", "playground", encoders=encoders, decoders=decoders)


@router.get("/history", response_class=HTMLResponse)
async def history(
    request: Request, who: PageUser, svc: ServicesDep, f: ListFilters, page_no: PageNo = 1
) -> HTMLResponse:
    query = InferenceFilter(
        account_id=who.account.id,
        model_id=f.value("model_id"),
        task=f.value("task"),
        status=f.value("status"),
        since=f.since_at,
        until=f.until_at,
    )
    records, total = await svc.history.list(query, limit=HISTORY_PAGE, offset=(page_no - 1) * HISTORY_PAGE)
    return page(
        request,
        who,
        "history.html",
        "history",
        records=records,
        total=total,
        params=f.params,
        **pager(f.params, page_no, total, HISTORY_PAGE),
    )


@router.get("/history/{inference_id}", response_class=HTMLResponse)
async def history_record(request: Request, inference_id: str, who: PageUser, svc: ServicesDep) -> HTMLResponse:
    try:
        record = await svc.history.get(who, inference_id)
    except OutriderError as exc:
        return error_page(request, who, "history", exc)
    return page(request, who, "record.html", "history", record=record, data=record_out(record).model_dump(mode="json"))


@router.get("/datasets", response_class=HTMLResponse)
async def datasets(request: Request, who: PageUser, svc: ServicesDep) -> HTMLResponse:
    listed = [dataset_out(d) for d in await svc.datasets.list(who.account.id)]
    statuses, _ = await svc.data_generation.list_statuses(who.account.id, limit=GENERATION_JOBS_SHOWN, offset=0)
    models = await svc.catalog.models_for(who.account.id)
    return page(
        request,
        who,
        "datasets.html",
        "datasets",
        datasets=listed,
        generation_jobs=[generation_job_out(s) for s in statuses],
        teachers=[m.id for m in models if m.kind == "decoder"],
    )


@router.get("/generation/{job_id}", response_class=HTMLResponse)
async def generation_job(request: Request, job_id: str, who: PageUser, svc: ServicesDep) -> HTMLResponse:
    try:
        job = generation_job_out(await svc.data_generation.status(who.account.id, job_id))
    except OutriderError as exc:
        return error_page(request, who, "datasets", exc)
    return page(request, who, "generation_job.html", "datasets", job=job, data=job.model_dump(mode="json"))


@router.get("/datasets/{name}", response_class=HTMLResponse)
async def dataset(
    request: Request,
    name: str,
    who: PageUser,
    svc: ServicesDep,
    version: int | None = Query(None, ge=1, le=1_000_000),
    page_no: PageNo = 1,
) -> HTMLResponse:
    try:
        found = dataset_out(await svc.datasets.get(who.account.id, name))
        examples = await svc.datasets.examples(
            who.account.id, name, version, offset=(page_no - 1) * EXAMPLES_PAGE, limit=EXAMPLES_PAGE
        )
    except OutriderError as exc:
        return error_page(request, who, "datasets", exc)
    shown = examples.version
    return page(
        request,
        who,
        "dataset.html",
        "datasets",
        dataset=found,
        shown=shown,
        examples=examples.examples,
        first=(page_no - 1) * EXAMPLES_PAGE,
        **pager({"version": shown.version}, page_no, shown.example_count, EXAMPLES_PAGE),
    )


@router.get("/training", response_class=HTMLResponse)
async def training(
    request: Request,
    who: PageUser,
    svc: ServicesDep,
    continue_from: str = Query("", alias="from", max_length=100, description="A checkpoint id to start from."),
) -> HTMLResponse:
    jobs, total = await svc.training.list(who.account.id, limit=JOBS_PAGE, offset=0)
    bases = [spec.id for spec, availability in await svc.catalog.base_models() if availability.available]
    names = [d.name for d in await svc.datasets.list(who.account.id)]
    return page(
        request,
        who,
        "training.html",
        "training",
        jobs=[job_out(j) for j in jobs],
        total=total,
        # A checkpoint to continue from is offered as the first base; the API checks that it is this account's.
        bases=([continue_from] if continue_from else []) + bases,
        continue_from=continue_from,
        dataset_names=names,
    )


@router.get("/training/{job_id}", response_class=HTMLResponse)
async def training_job(request: Request, job_id: str, who: PageUser, svc: ServicesDep) -> HTMLResponse:
    try:
        job = job_out(await svc.training.get(who.account.id, job_id))
        checkpoints = [checkpoint_out(c) for c in await svc.training.checkpoints(who.account.id, job_id)]
    except OutriderError as exc:
        return error_page(request, who, "training", exc)
    data = {
        "job": job.model_dump(mode="json"),
        "checkpoints": [c.model_dump(mode="json") for c in checkpoints],
        "can_write": who.role != "viewer",
    }
    per_label = (job.metrics or {}).get("per_label") or {}
    return page(request, who, "training_job.html", "training", job=job, data=data, per_label=per_label)
