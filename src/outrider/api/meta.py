"""Operations endpoints: liveness (``/health``), readiness (``/health/ready``) and Prometheus metrics
(``/metrics``). See docs/operations.md."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from outrider import __version__
from outrider.api.deps import ServicesDep, authenticated
from outrider.core.errors import PermissionDenied
from outrider.observability.metrics import CONTENT_TYPE

router = APIRouter(tags=["meta"])


async def metrics_reader(request: Request, svc: ServicesDep) -> None:
    """``Authorization: Bearer <OUTRIDER_METRICS_TOKEN>`` when that is set, or an admin account's API key."""
    token = svc.settings.metrics_token
    if token:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
            return
    who = await authenticated(request, svc)  # 401 for a missing or unknown key (or session)
    if not who.account.is_admin:
        raise PermissionDenied("metrics need an admin API key or the metrics token (OUTRIDER_METRICS_TOKEN)")


MetricsReader = Annotated[None, Depends(metrics_reader)]


@router.get("/health")
async def health() -> dict:
    """Liveness: the process answers. It checks nothing else (``/health/ready`` does)."""
    return {"status": "ok", "version": __version__}


@router.get("/health/ready", responses={503: {"description": "a part is not ready; `failing` names it"}})
async def ready(svc: ServicesDep) -> JSONResponse:
    """Readiness: the database answers, its migrations are at head and the embedded worker runs."""
    report = await svc.monitoring.readiness()
    body = {
        "status": "ready" if report.ready else "not_ready",
        "failing": report.failing,
        "checks": {check.name: {"status": check.status, "detail": check.detail} for check in report.checks},
    }
    return JSONResponse(body, status_code=200 if report.ready else 503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
async def metrics(svc: ServicesDep, _: MetricsReader) -> Response:
    """Prometheus text exposition of this process's metrics."""
    return Response(await svc.monitoring.scrape(), media_type=CONTENT_TYPE)
