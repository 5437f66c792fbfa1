"""Evaluation routes: parse, call ``EvaluationService``, render."""

from __future__ import annotations

from fastapi import APIRouter, Query

from outrider.api.deps import CurrentPrincipal, ServicesDep
from outrider.api.paging import offset_query

from .conversion import evaluation_out, to_request
from .schemas import EvaluationIn, EvaluationList, EvaluationOut

router = APIRouter(prefix="/evaluations", tags=["evaluations"])


@router.post("", response_model=EvaluationOut, status_code=201)
async def create_evaluation(body: EvaluationIn, who: CurrentPrincipal, svc: ServicesDep) -> EvaluationOut:
    """Queue an evaluation of the models on the dataset version; a worker runs it."""
    return evaluation_out(await svc.evaluations.create(who, to_request(body)))


@router.get("", response_model=EvaluationList)
async def list_evaluations(
    who: CurrentPrincipal,
    svc: ServicesDep,
    limit: int = Query(50, ge=1, le=500),
    offset: int = offset_query(),
) -> EvaluationList:
    jobs, total = await svc.evaluations.list(who.account.id, limit=limit, offset=offset)
    return EvaluationList(evaluations=[evaluation_out(j) for j in jobs], total=total, limit=limit, offset=offset)


@router.get("/{evaluation_id}", response_model=EvaluationOut)
async def get_evaluation(evaluation_id: str, who: CurrentPrincipal, svc: ServicesDep) -> EvaluationOut:
    return evaluation_out(await svc.evaluations.get(who.account.id, evaluation_id))
