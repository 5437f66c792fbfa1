"""Account pages: sign-in, overview, keys, usage (with its CSV export), models and users. Thin: each reads through
the services the JSON API uses; changes are made by the page's script through the JSON API."""

from __future__ import annotations

import asyncio
import csv
import tempfile
from collections.abc import Iterator
from typing import IO

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from outrider.api.admin.routes import key_out
from outrider.api.auth.routes import user_out
from outrider.api.deps import ServicesDep
from outrider.core.errors import OutriderError
from outrider.core.usage import MICRO_USD
from outrider.services.accounts import Principal
from outrider.services.overview import PERIODS

from .auth import PageUser, SignInRequired, page_principal
from .render import Filters, ListFilters, PageNo, error_page, page, pager, query_with, render

router = APIRouter(prefix="/ui", include_in_schema=False)

USAGE_PAGE = 50
TRANSACTIONS_SHOWN = 10
CSV_SPOOL_BYTES = 8 * 1024 * 1024
CSV_CHUNK_CHARS = 64 * 1024
CSV_COLUMNS = [
    "created_at",
    "id",
    "inference_id",
    "api_key_id",
    "surface",
    "model_id",
    "model_used",
    "task",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_ms",
]


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, svc: ServicesDep) -> Response:
    """The sign-in form; someone already signed in goes on to the overview."""
    try:
        await page_principal(request, svc)
    except SignInRequired:
        return render(request, "login.html", {})
    return RedirectResponse("/ui/", status_code=303)


@router.get("", include_in_schema=False)
async def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/", response_class=HTMLResponse)
async def overview(
    request: Request, who: PageUser, svc: ServicesDep, period: str = Query("week", max_length=10)
) -> HTMLResponse:
    period = period if period in PERIODS else "week"
    data = await asyncio.to_thread(svc.overview.overview, who, period)
    chart = {
        "x": [int(b.start.timestamp()) for b in data.buckets],
        "requests": [b.requests for b in data.buckets],
        "errors": [b.errors for b in data.buckets],
        "spend": [b.spend_usd for b in data.buckets],
    }
    return page(request, who, "overview.html", "overview", o=data, periods=list(PERIODS), chart=chart)


@router.get("/keys", response_class=HTMLResponse)
async def keys(request: Request, who: PageUser, svc: ServicesDep) -> HTMLResponse:
    listed = await asyncio.to_thread(svc.accounts.list_keys, who)
    models = await svc.catalog.models_for(who.account.id)
    # The edit form is filled by the page's script from the keys as the API shows them.
    editable = [key_out(k).model_dump(mode="json") for k in listed if k.revoked_at is None]
    return page(request, who, "keys.html", "keys", keys=listed, models=[m.id for m in models], keys_data=editable)


def _usage_filters(f: Filters) -> dict:
    return {
        "model_id": f.value("model_id"),
        "status": f.value("status"),
        "surface": f.value("surface"),
        "since": f.since_at,
        "until": f.until_at,
    }


@router.get("/usage", response_class=HTMLResponse)
async def usage(request: Request, who: PageUser, svc: ServicesDep, f: ListFilters, page_no: PageNo = 1) -> HTMLResponse:
    offset = (page_no - 1) * USAGE_PAGE
    rows, totals = await asyncio.to_thread(svc.billing.usage, who, limit=USAGE_PAGE, offset=offset, **_usage_filters(f))
    balance = await asyncio.to_thread(svc.billing.balance, who)
    transactions, transaction_count = await asyncio.to_thread(
        svc.billing.transactions, who, kind=None, limit=TRANSACTIONS_SHOWN, offset=0
    )
    return page(
        request,
        who,
        "usage.html",
        "usage",
        rows=rows,
        totals=totals,
        cost_total=totals.cost_micro_usd / MICRO_USD,
        micro=MICRO_USD,
        params=f.params,
        csv_query=query_with(f.params),
        balance=balance,
        transactions=transactions,
        transaction_count=transaction_count,
        **pager(f.params, page_no, totals.requests, USAGE_PAGE),
    )


def _write_usage_csv(svc, who: Principal, filters: dict, out: IO[str]) -> None:
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for rows in svc.billing.usage_batches(who, **filters):
        writer.writerows(
            [
                r.created_at.isoformat(),
                r.id,
                r.inference_id or "",
                r.api_key_id or "",
                r.surface,
                r.model_id,
                r.model_used,
                r.task,
                r.status,
                r.prompt_tokens,
                r.completion_tokens,
                f"{r.cost_micro_usd / MICRO_USD:.6f}",
                r.latency_ms,
            ]
            for r in rows
        )


def _chunks(spool: IO[str]) -> Iterator[str]:
    with spool:
        spool.seek(0)
        while chunk := spool.read(CSV_CHUNK_CHARS):
            yield chunk


@router.get("/usage.csv")
async def usage_csv(who: PageUser, svc: ServicesDep, f: ListFilters) -> StreamingResponse:
    """Every matching row: written on one thread from one read (to memory, or to disk past a few MB), then
    streamed."""
    spool = tempfile.SpooledTemporaryFile(max_size=CSV_SPOOL_BYTES, mode="w+", newline="")  # noqa: SIM115 (closed by _chunks)
    try:
        await asyncio.to_thread(_write_usage_csv, svc, who, _usage_filters(f), spool)
    except BaseException:
        spool.close()
        raise
    return StreamingResponse(
        _chunks(spool),  # a sync iterator: Starlette runs it in a thread
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="usage.csv"'},
    )


@router.get("/users", response_class=HTMLResponse)
async def users(request: Request, who: PageUser, svc: ServicesDep) -> HTMLResponse:
    """Owners only: the service refuses other roles (403), shown as the error page."""
    try:
        listed = await asyncio.to_thread(svc.users.list, who)
    except OutriderError as exc:
        return error_page(request, who, "users", exc)
    return page(request, who, "users.html", "users", users=[user_out(u) for u in listed])


@router.get("/models", response_class=HTMLResponse)
async def models(request: Request, who: PageUser, svc: ServicesDep) -> HTMLResponse:
    error = None
    try:
        listed = await svc.catalog.models_for(who.account.id)
    except OutriderError as exc:
        listed, error = [], exc.message
    return page(request, who, "models.html", "models", models=listed, error=error)
