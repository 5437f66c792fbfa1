"""Adaptive-loop pages: the review queue, deployments (target history, switch, rollback) and evaluations (start
one, per-label figures, a comparison of two models). Read through the services the JSON API uses; the page
scripts give feedback, judge, switch, roll back and start evaluations through the JSON API."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse

from outrider.api.data.conversion import dataset_out
from outrider.api.deployments.conversion import deployment_out
from outrider.api.deps import ServicesDep
from outrider.api.evaluations.conversion import evaluation_out
from outrider.api.native.conversion import record_out
from outrider.api.training.conversion import job_out
from outrider.core.deployments import is_deployment_id
from outrider.core.errors import OutriderError
from outrider.evaluation.scoring import EVALUATED_TASK_TYPES
from outrider.storage.queries.inferences import InferenceFilter

from .auth import PageUser
from .render import ListFilters, PageNo, error_page, page, pager

router = APIRouter(prefix="/ui", include_in_schema=False)

REVIEW_PAGE = 25
EVALUATIONS_PAGE = 50
SWITCH_JOBS = 10  # the switch form offers the checkpoints of this many latest training jobs


async def model_ids(svc, account_id: str, kind: str | None = None) -> list[str]:
    """The ids of the models this account may call (of one kind), deployments left out."""
    models = await svc.catalog.models_for(account_id)
    return [m.id for m in models if not is_deployment_id(m.id) and (kind is None or m.kind == kind)]


async def switch_targets(svc, account_id: str) -> list[tuple[str, str]]:
    """What a deployment can be pointed at, as (id, what it is): the account's models (complete fine-tunes among
    them) and the checkpoints of its latest training jobs."""
    models = await svc.catalog.models_for(account_id)
    targets = [(m.id, m.kind) for m in models if not is_deployment_id(m.id)]
    jobs, _ = await svc.training.list(account_id, limit=SWITCH_JOBS, offset=0)
    for job in map(job_out, jobs):
        for checkpoint in await svc.training.checkpoints(account_id, job.id):
            targets.append((checkpoint.id, f"checkpoint of {job.model_name} at step {checkpoint.step}"))
    return targets


async def judge_models(svc, account_id: str) -> list[str]:
    """The models a judge form offers: decoders (local, fine-tuned or upstream)."""
    return await model_ids(svc, account_id, "decoder")


@router.get("/review", response_class=HTMLResponse)
async def review(
    request: Request,
    who: PageUser,
    svc: ServicesDep,
    f: ListFilters,
    page_no: PageNo = 1,
    record: str = Query("", max_length=100),
) -> HTMLResponse:
    """Records no one reviewed, those the judge could not vouch for first; one of them (the first, or the one
    chosen) with the correction editor and the judge form."""
    query = InferenceFilter(
        account_id=who.account.id,
        model_id=f.value("model_id"),
        task=f.value("task"),
        since=f.since_at,
        until=f.until_at,
    )
    queue, total = await svc.history.review_queue(query, limit=REVIEW_PAGE, offset=(page_no - 1) * REVIEW_PAGE)
    chosen = None
    if record:
        try:
            chosen = await svc.history.get(who, record)
        except OutriderError as exc:
            return error_page(request, who, "review", exc)
    elif queue:
        chosen = queue[0]
    return page(
        request,
        who,
        "review.html",
        "review",
        queue=queue,
        total=total,
        params=f.params,
        record=chosen,
        data=record_out(chosen).model_dump(mode="json") if chosen else None,
        judge_models=await judge_models(svc, who.account.id) if chosen else [],
        **pager(f.params, page_no, total, REVIEW_PAGE),
    )


@router.get("/deployments", response_class=HTMLResponse)
async def deployments(request: Request, who: PageUser, svc: ServicesDep) -> HTMLResponse:
    listed = [deployment_out(d) for d in await svc.deployments.list(who)]
    targets = await switch_targets(svc, who.account.id)
    return page(request, who, "deployments.html", "deployments", deployments=listed, targets=targets)


@router.get("/deployments/{name}", response_class=HTMLResponse)
async def deployment(request: Request, name: str, who: PageUser, svc: ServicesDep) -> HTMLResponse:
    try:
        found = deployment_out(await svc.deployments.get(who, name))
        rollback_to = await svc.deployments.rollback_target(who, name)
    except OutriderError as exc:
        return error_page(request, who, "deployments", exc)
    targets = await switch_targets(svc, who.account.id)
    return page(request, who, "deployment.html", "deployments", d=found, rollback_to=rollback_to, targets=targets)


@router.get("/evaluations", response_class=HTMLResponse)
async def evaluations(request: Request, who: PageUser, svc: ServicesDep, page_no: PageNo = 1) -> HTMLResponse:
    jobs, total = await svc.evaluations.list(
        who.account.id, limit=EVALUATIONS_PAGE, offset=(page_no - 1) * EVALUATIONS_PAGE
    )
    models = await svc.catalog.models_for(who.account.id)
    listed = [dataset_out(d) for d in await svc.datasets.list(who.account.id)]
    return page(
        request,
        who,
        "evaluations.html",
        "evaluations",
        evaluations=[evaluation_out(j) for j in jobs],
        total=total,
        encoders=[m.id for m in models if m.kind == "encoder"],
        datasets=[d for d in listed if d.task_type in EVALUATED_TASK_TYPES],
        **pager({}, page_no, total, EVALUATIONS_PAGE),
    )


@router.get("/evaluations/{evaluation_id}", response_class=HTMLResponse)
async def evaluation(request: Request, evaluation_id: str, who: PageUser, svc: ServicesDep) -> HTMLResponse:
    try:
        found = evaluation_out(await svc.evaluations.get(who.account.id, evaluation_id))
    except OutriderError as exc:
        return error_page(request, who, "evaluations", exc)
    return page(request, who, "evaluation.html", "evaluations", e=found, data=found.model_dump(mode="json"))


@router.get("/evaluations/{evaluation_id}/compare", response_class=HTMLResponse)
async def comparison(
    request: Request,
    evaluation_id: str,
    who: PageUser,
    svc: ServicesDep,
    candidate: str = Query("", max_length=300),
) -> HTMLResponse:
    """Two models of one evaluation, on the same examples: the bootstrap of the headline figures and the
    per-label differences (candidate minus baseline). Without ``candidate``: the first one compared."""
    try:
        found = evaluation_out(await svc.evaluations.get(who.account.id, evaluation_id))
    except OutriderError as exc:
        return error_page(request, who, "evaluations", exc)
    chosen = next((c for c in found.comparisons if not candidate or c["candidate"] == candidate), None)
    if chosen is None:
        reason = (
            f"no comparison with '{candidate}' in this evaluation"
            if candidate
            else "this evaluation has no comparison yet: it needs two models and to be complete"
        )
        return page(request, who, "error.html", "evaluations", status_code=404, message=reason)
    return page(request, who, "comparison.html", "evaluations", e=found, c=chosen)
