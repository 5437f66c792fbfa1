"""Aggregates over usage records for a time window: totals per time bucket (requests, errors, cost, tokens)
and latency percentiles. Plain range queries on ``(account_id, created_at)``, so they read the same on SQLite and
PostgreSQL."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from outrider.storage.tables import UsageRow


@dataclass(frozen=True)
class WindowTotals:
    requests: int
    errors: int
    cost_micro_usd: int
    tokens: int


def _in_window(account_id: str, since: datetime, until: datetime):
    return (UsageRow.account_id == account_id, UsageRow.created_at >= since, UsageRow.created_at < until)


# Up to this many records a window's latencies are sorted; past it they are read in latency order instead.
SORT_AT_MOST = 10_000


def latency_percentile(
    session: Session, account_id: str, since: datetime, until: datetime, *, count: int, fraction: float
) -> float | None:
    """The latency at ``fraction`` (nearest rank) of the ``count`` records in the window; None when empty.

    Two plans over the indexes of migration 0008, picked by the window's size. A large window is read in latency
    order from ``(account_id, latency_ms, created_at)``, stopping at the rank (the walk passes the account's
    records outside the window too, so it costs about the same for any window). A small one is sorted from
    the window's covering index: ``latency_ms + 0`` keeps the planner off the latency index. Measured on a
    busy machine over 100,000 records: the last day's 4,000 sorted 2 ms, walked 37 ms; the month's 100,000
    sorted 560 ms, walked 49 ms."""
    if count <= 0:
        return None
    rank = min(count - 1, max(0, math.ceil(fraction * count) - 1))
    order = UsageRow.latency_ms + 0 if count <= SORT_AT_MOST else UsageRow.latency_ms
    value = session.scalar(
        select(UsageRow.latency_ms).where(*_in_window(account_id, since, until)).order_by(order).limit(1).offset(rank)
    )
    return float(value) if value is not None else None


def bucket_totals(session: Session, account_id: str, edges: list[datetime]) -> list[WindowTotals]:
    """Totals for each interval ``[edges[i], edges[i + 1])``: one range query per interval on the
    ``(account_id, created_at)`` index, so together they read the window's rows once (measured on SQLite: a
    single query with a ``CASE`` sum per interval was five times slower)."""
    totals = []
    for start, end in pairwise(edges):
        row = session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((UsageRow.status == "error", 1), else_=0)), 0),
                func.coalesce(func.sum(UsageRow.cost_micro_usd), 0),
                func.coalesce(func.sum(UsageRow.prompt_tokens + UsageRow.completion_tokens), 0),
            ).where(*_in_window(account_id, start, end))
        ).one()
        totals.append(WindowTotals(int(row[0]), int(row[1]), int(row[2]), int(row[3])))
    return totals
