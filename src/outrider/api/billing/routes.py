"""Credits (balance, transactions, admin grants) and usage logs. Every account sees only its own."""

from __future__ import annotations

import asyncio
from datetime import datetime

from fastapi import APIRouter, Query

from outrider.api.deps import AdminPrincipal, CurrentPrincipal, ServicesDep
from outrider.api.paging import offset_query
from outrider.core.usage import MICRO_USD
from outrider.storage.records import CreditTransaction, UsageRecord, UsageTotals

from .schemas import CreditsOut, GrantCreate, TransactionList, TransactionOut, UsageList, UsageOut, UsageTotalsOut

router = APIRouter(tags=["credits and usage"])


def _transaction_out(t: CreditTransaction) -> TransactionOut:
    return TransactionOut(
        id=t.id,
        kind=t.kind,
        amount_usd=t.amount_micro_usd / MICRO_USD,
        amount_micro_usd=t.amount_micro_usd,
        balance_after_micro_usd=t.balance_after_micro_usd,
        reference_id=t.reference_id,
        api_key_id=t.api_key_id,
        model_id=t.model_id,
        description=t.description,
        created_at=t.created_at,
    )


def _usage_out(u: UsageRecord) -> UsageOut:
    return UsageOut(
        id=u.id,
        created_at=u.created_at,
        inference_id=u.inference_id,
        api_key_id=u.api_key_id,
        surface=u.surface,
        model_id=u.model_id,
        model_used=u.model_used,
        task=u.task,
        status=u.status,
        prompt_tokens=u.prompt_tokens,
        completion_tokens=u.completion_tokens,
        total_tokens=u.prompt_tokens + u.completion_tokens,
        cache_read_tokens=u.cache_read_tokens,
        cache_write_tokens=u.cache_write_tokens,
        cost_usd=u.cost_micro_usd / MICRO_USD,
        cost_micro_usd=u.cost_micro_usd,
        latency_ms=u.latency_ms,
    )


def _totals_out(t: UsageTotals) -> UsageTotalsOut:
    return UsageTotalsOut(
        requests=t.requests,
        prompt_tokens=t.prompt_tokens,
        completion_tokens=t.completion_tokens,
        total_tokens=t.prompt_tokens + t.completion_tokens,
        cache_read_tokens=t.cache_read_tokens,
        cache_write_tokens=t.cache_write_tokens,
        cost_usd=t.cost_micro_usd / MICRO_USD,
        cost_micro_usd=t.cost_micro_usd,
    )


@router.get("/credits", response_model=CreditsOut)
async def get_credits(who: CurrentPrincipal, svc: ServicesDep) -> CreditsOut:
    b = await asyncio.to_thread(svc.billing.balance, who)
    return CreditsOut(
        account_id=b.account_id,
        balance_usd=b.balance_micro_usd / MICRO_USD,
        balance_micro_usd=b.balance_micro_usd,
        reserved_micro_usd=b.reserved_micro_usd,
        available_micro_usd=b.available_micro_usd,
        unlimited=b.unlimited,
    )


@router.get("/credits/transactions", response_model=TransactionList)
async def list_transactions(
    who: CurrentPrincipal,
    svc: ServicesDep,
    kind: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = offset_query(),
) -> TransactionList:
    rows, total = await asyncio.to_thread(svc.billing.transactions, who, kind=kind, limit=limit, offset=offset)
    return TransactionList(data=[_transaction_out(t) for t in rows], total=total, limit=limit, offset=offset)


@router.post("/credits/grants", response_model=TransactionOut, status_code=201)
async def grant_credits(body: GrantCreate, who: AdminPrincipal, svc: ServicesDep) -> TransactionOut:
    txn = await asyncio.to_thread(
        svc.billing.grant,
        created_by=who.account.id,
        account_id=body.account_id,
        account_name=body.account_name,
        amount_usd=body.amount_usd,
        kind=body.kind,
        description=body.description,
        reference_id=body.reference_id,
    )
    return _transaction_out(txn)


@router.get("/usage", response_model=UsageList)
async def list_usage(
    who: CurrentPrincipal,
    svc: ServicesDep,
    model_id: str | None = None,
    api_key_id: str | None = None,
    status: str | None = None,
    surface: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = offset_query(),
) -> UsageList:
    rows, totals = await asyncio.to_thread(
        svc.billing.usage,
        who,
        model_id=model_id,
        api_key_id=api_key_id,
        status=status,
        surface=surface,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return UsageList(data=[_usage_out(u) for u in rows], totals=_totals_out(totals), limit=limit, offset=offset)
