"""The account overview: balance, spend, requests, error rate and latency percentiles over a period, with a
series per time bucket (the dashboard's first page). Read-only; every figure comes from usage records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from outrider.core.errors import InvalidRequest
from outrider.core.usage import MICRO_USD
from outrider.services.accounts import Principal
from outrider.services.billing import BillingService
from outrider.storage.db import Database
from outrider.storage.queries import usage_stats as q
from outrider.storage.records import Balance

# period -> (length, number of buckets in its chart)
PERIODS: dict[str, tuple[timedelta, int]] = {
    "day": (timedelta(days=1), 24),
    "week": (timedelta(days=7), 28),
    "month": (timedelta(days=30), 30),
}


@dataclass(frozen=True)
class Bucket:
    start: datetime
    requests: int
    errors: int
    spend_usd: float


@dataclass(frozen=True)
class Overview:
    period: str
    since: datetime
    until: datetime
    balance: Balance
    requests: int
    errors: int
    spend_usd: float
    tokens: int
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    buckets: list[Bucket]

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


class OverviewService:
    def __init__(self, db: Database, billing: BillingService) -> None:
        self.db = db
        self.billing = billing

    def overview(self, principal: Principal, period: str, *, now: datetime | None = None) -> Overview:
        if period not in PERIODS:
            raise InvalidRequest(f"period must be one of {', '.join(PERIODS)}", param="period")
        length, count = PERIODS[period]
        until = now or datetime.now(UTC)
        since = until - length
        step = length / count
        edges = [since + step * i for i in range(count)] + [until]
        account_id = principal.account.id
        balance = self.billing.balance(principal)
        with self.db.session() as s:
            series = q.bucket_totals(s, account_id, edges)
            totals = q.WindowTotals(
                requests=sum(b.requests for b in series),
                errors=sum(b.errors for b in series),
                cost_micro_usd=sum(b.cost_micro_usd for b in series),
                tokens=sum(b.tokens for b in series),
            )
            p50, p95 = (
                q.latency_percentile(s, account_id, since, until, count=totals.requests, fraction=f)
                for f in (0.5, 0.95)
            )
        return Overview(
            period=period,
            since=since,
            until=until,
            balance=balance,
            requests=totals.requests,
            errors=totals.errors,
            spend_usd=totals.cost_micro_usd / MICRO_USD,
            tokens=totals.tokens,
            p50_latency_ms=p50,
            p95_latency_ms=p95,
            buckets=[
                Bucket(start, b.requests, b.errors, b.cost_micro_usd / MICRO_USD)
                for start, b in zip(edges, series, strict=False)
            ],
        )
