"""The overview's figures from usage records: totals, error rate, nearest-rank latency percentiles, buckets
over the period, another account's records left out, and unknown periods refused."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from outrider.core.errors import InvalidRequest
from outrider.services.accounts import Principal
from outrider.services.billing import BillingService
from outrider.services.overview import OverviewService
from outrider.storage.queries import billing as billing_q
from outrider.storage.queries import usage_stats
from outrider.storage.records import NewUsage
from outrider.storage.tables import UsageRow
from tests.databases import make_account


def usage(account_id: str, latency_ms: float, *, status: str = "success", cost: int = 1_000) -> NewUsage:
    return NewUsage(
        account_id=account_id,
        api_key_id=None,
        inference_id=None,
        surface="native",
        model_id="m",
        model_used="m",
        task="extract",
        status=status,
        prompt_tokens=10,
        completion_tokens=2,
        cost_micro_usd=cost,
        latency_ms=latency_ms,
    )


def add(db, records: list[NewUsage], created_at: datetime) -> None:
    with db.session() as s:
        ids = billing_q.insert_usages(s, records)
        s.execute(update(UsageRow).where(UsageRow.id.in_(ids)).values(created_at=created_at))


@pytest.fixture
def setup(db):
    mine, other = make_account(db, "mine"), make_account(db, "other")
    return db, OverviewService(db, BillingService(db)), Principal(account=mine, key=None), other


def test_totals_error_rate_and_latency_percentiles_over_the_day(setup):
    db, service, who, other = setup
    now = datetime.now(UTC)
    # 20 calls in the last hour: latencies 1..20 ms, two of them errors.
    add(db, [usage(who.account.id, float(i), status="error" if i in (3, 7) else "success") for i in range(1, 21)], now)
    add(db, [usage(who.account.id, 999.0)], now - timedelta(days=2))  # outside the day
    add(db, [usage(other.id, 5000.0, status="error")], now)  # another account
    o = service.overview(who, "day", now=now + timedelta(seconds=1))
    assert (o.requests, o.errors, o.tokens) == (20, 2, 240)
    assert o.error_rate == pytest.approx(0.1)
    assert o.spend_usd == pytest.approx(0.02)
    assert (o.p50_latency_ms, o.p95_latency_ms) == (10.0, 19.0)  # nearest rank: the 10th and 19th of 20
    assert len(o.buckets) == 24 and sum(b.requests for b in o.buckets) == 20
    assert o.buckets[-1].requests == 20 and o.buckets[-1].errors == 2


def test_a_large_window_read_in_latency_order_gives_the_same_percentiles(setup, monkeypatch):
    """Past SORT_AT_MOST records the latency index is walked instead of the window sorted: same figures, and
    the records outside the window or of another account that the walk passes are not counted."""
    db, service, who, other = setup
    now = datetime.now(UTC)
    add(db, [usage(who.account.id, float(i)) for i in range(1, 21)], now)
    add(db, [usage(who.account.id, 0.5), usage(who.account.id, 15.5)], now - timedelta(days=2))
    add(db, [usage(other.id, 0.1)], now)
    sorted_figures = service.overview(who, "day", now=now + timedelta(seconds=1))
    monkeypatch.setattr(usage_stats, "SORT_AT_MOST", 0)
    walked = service.overview(who, "day", now=now + timedelta(seconds=1))
    assert (walked.p50_latency_ms, walked.p95_latency_ms) == (sorted_figures.p50_latency_ms, 19.0)
    assert walked.p50_latency_ms == 10.0


def test_buckets_place_each_record_in_its_interval(setup):
    db, service, who, _ = setup
    now = datetime(2026, 3, 31, 12, tzinfo=UTC)
    add(db, [usage(who.account.id, 1.0)], now - timedelta(days=29, hours=12))  # the first of 30 days
    add(db, [usage(who.account.id, 1.0), usage(who.account.id, 2.0)], now - timedelta(days=10, hours=1))
    o = service.overview(who, "month", now=now)
    assert len(o.buckets) == 30
    counts = {i: b.requests for i, b in enumerate(o.buckets) if b.requests}
    assert counts == {0: 1, 19: 2}
    assert o.buckets[0].start == now - timedelta(days=30)
    week = service.overview(who, "week", now=now)
    assert week.requests == 0 and week.error_rate is None and week.p50_latency_ms is None


def test_an_unknown_period_is_refused(setup):
    _, service, who, _ = setup
    with pytest.raises(InvalidRequest):
        service.overview(who, "year")
