"""Credits, reservations, transactions and usage records.

Money is integer micro-dollars throughout. The balance is only ever changed by a single conditional
``UPDATE`` (atomic in SQLite and PostgreSQL alike), so concurrent calls cannot overdraw it:

- ``reserve`` moves an amount into ``reserved`` only if ``balance - reserved`` covers it;
- ``settle_many`` charges calls' final costs (never more than what was reserved) and frees their reservations;
- ``add_credit`` adds a grant or a refund; ``charge_up_to`` takes at most what is available (jobs).

Each change of the balance writes a ``credit_transactions`` row carrying the balance after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Row, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from outrider.core.ids import new_id
from outrider.storage.queries import as_utc, now
from outrider.storage.records import Balance, CreditTransaction, NewUsage, UsageRecord, UsageTotals
from outrider.storage.tables import AccountRow, CreditTransactionRow, UsageRow


def get_balance(session: Session, account_id: str) -> Balance | None:
    row = session.get(AccountRow, account_id)
    if row is None:
        return None
    session.refresh(row)  # another process (or thread) may have changed it since this session loaded it
    return Balance(row.id, row.balance_micro_usd, row.reserved_micro_usd, bool(row.unlimited_credits))


# The statements every metered call runs, built once: Core statements on the table (an ORM-enabled ``update``
# evaluates its criteria against the session's loaded objects, and building the expression each time costs as
# much again). ``get_balance`` refreshes what a session loaded, so nothing reads a stale balance.
_accounts = AccountRow.__table__
_RESERVE = (
    update(_accounts)
    .where(
        _accounts.c.id == bindparam("account"),
        _accounts.c.balance_micro_usd - _accounts.c.reserved_micro_usd >= bindparam("amount"),
    )
    .values(reserved_micro_usd=_accounts.c.reserved_micro_usd + bindparam("amount"))
)
_RELEASE = (
    update(_accounts)
    .where(_accounts.c.id == bindparam("account"))
    .values(reserved_micro_usd=_accounts.c.reserved_micro_usd - bindparam("amount"))
)
_CHANGE_BALANCE = (
    update(_accounts)
    .where(_accounts.c.id == bindparam("account"))
    .values(
        balance_micro_usd=_accounts.c.balance_micro_usd + bindparam("delta"),
        reserved_micro_usd=_accounts.c.reserved_micro_usd + bindparam("reserved_delta"),
    )
    .returning(_accounts.c.balance_micro_usd)
)


def reserve(session: Session, account_id: str, amount: int) -> bool:
    """Hold ``amount`` for a call in flight; False when the available balance cannot cover it."""
    return session.execute(_RESERVE, {"account": account_id, "amount": amount}).rowcount == 1


def reserve_many(session: Session, asks: list[tuple[str, int]]) -> list[bool]:
    """Hold each ``(account_id, amount)`` of a batch, in order, as ``reserve`` would one by one: one statement
    per account when its available balance covers the batch's sum (every prefix then fits too), otherwise one
    per ask. On a server database each statement is a round trip, and a burst of calls is mostly one account's."""
    by_account: dict[str, list[int]] = {}
    for index, (account_id, _) in enumerate(asks):
        by_account.setdefault(account_id, []).append(index)
    reserved = [False] * len(asks)
    for account_id, indexes in by_account.items():
        if len(indexes) > 1 and reserve(session, account_id, sum(asks[i][1] for i in indexes)):
            for i in indexes:
                reserved[i] = True
            continue
        for i in indexes:
            reserved[i] = reserve(session, account_id, asks[i][1])
    return reserved


def release(session: Session, account_id: str, amount: int) -> None:
    session.execute(_RELEASE, {"account": account_id, "amount": amount})


def clear_reservations(session: Session) -> int:
    """At start-up no call is in flight: reservations left by a crashed process are void."""
    result = session.execute(update(AccountRow).where(AccountRow.reserved_micro_usd != 0).values(reserved_micro_usd=0))
    return result.rowcount


def total_reserved(session: Session) -> int:
    """Micro-dollars held by calls in flight, over every account (one aggregate, for metrics)."""
    return int(session.scalar(select(func.coalesce(func.sum(AccountRow.reserved_micro_usd), 0))) or 0)


def _change_balance(session: Session, account_id: str, delta: int, *, reserved_delta: int = 0) -> int:
    params = {"account": account_id, "delta": delta, "reserved_delta": reserved_delta}
    return int(session.execute(_CHANGE_BALANCE, params).scalar_one())


def _transaction_fields(
    account_id: str,
    kind: str,
    amount: int,
    balance_after: int,
    *,
    reference_id: str | None = None,
    api_key_id: str | None = None,
    model_id: str | None = None,
    description: str | None = None,
    created_by: str | None = None,
) -> dict[str, object]:
    return {
        "id": new_id("txn"),
        "account_id": account_id,
        "kind": kind,
        "amount_micro_usd": amount,
        "balance_after_micro_usd": balance_after,
        "reference_id": reference_id,
        "api_key_id": api_key_id,
        "model_id": model_id,
        "description": description,
        "created_by": created_by,
        "created_at": now(),  # per row, in the order of a batch's charges
    }


def _transaction(
    session: Session, account_id: str, kind: str, amount: int, balance_after: int, **details: str | None
) -> CreditTransaction:
    # A Core insert: ORM objects cost a flush each.
    fields = _transaction_fields(account_id, kind, amount, balance_after, **details)
    session.execute(insert(CreditTransactionRow.__table__).values(**fields))
    return _credit_transaction(CreditTransactionRow(**fields))


def add_credit(
    session: Session,
    account_id: str,
    amount: int,
    *,
    kind: str = "grant",
    description: str | None = None,
    created_by: str | None = None,
    reference_id: str | None = None,
) -> CreditTransaction:
    after = _change_balance(session, account_id, amount)
    return _transaction(
        session,
        account_id,
        kind,
        amount,
        after,
        description=description,
        created_by=created_by,
        reference_id=reference_id,
    )


@dataclass(frozen=True)
class Settlement:
    """One call's charge: its reservation and its exact cost. The cost charged is capped at the reservation
    (callers keep it within), so a wrong estimate can never overdraw the account."""

    account_id: str
    reserved: int
    cost: int
    kind: str
    reference_id: str | None
    api_key_id: str | None
    model_id: str | None


def settle_many(session: Session, settlements: list[Settlement]) -> None:
    """Charge each call's cost and free its reservation, in the caller's transaction (a call that cost nothing
    only frees it): one balance update per account and one insert of all the charges, not two statements per
    call (each a round trip on a server database). Each charge row carries the balance after it, as if the calls
    had been settled one by one in order."""
    by_account: dict[str, list[Settlement]] = {}
    for settlement in settlements:
        by_account.setdefault(settlement.account_id, []).append(settlement)
    charges = []
    for account_id, group in by_account.items():
        costs = [min(s.cost, s.reserved) for s in group]
        charged, reserved = sum(costs), sum(s.reserved for s in group)
        if not charged:
            if reserved:
                release(session, account_id, reserved)
            continue
        after = _change_balance(session, account_id, -charged, reserved_delta=-reserved)
        balance = after + charged  # before this batch: the row is locked by the update until commit
        for settlement, cost in zip(group, costs, strict=True):
            if cost == 0:
                continue
            balance -= cost
            charges.append(
                _transaction_fields(
                    account_id,
                    settlement.kind,
                    -cost,
                    balance,
                    reference_id=settlement.reference_id,
                    api_key_id=settlement.api_key_id,
                    model_id=settlement.model_id,
                )
            )
    if charges:
        session.execute(insert(CreditTransactionRow.__table__), charges)


def charge_up_to(
    session: Session, account_id: str, amount: int, *, kind: str, reference_id: str | None, description: str | None
) -> tuple[int, CreditTransaction | None]:
    """Charge ``amount`` or, if less is available, all that is (jobs metered as they run). Returns what was
    charged: less than ``amount`` means the balance ran out."""
    if session.get(AccountRow, account_id) is None:
        return 0, None
    # A no-op write first: it takes the write lock (SQLite) / row lock (PostgreSQL) before the read below,
    # so no other writer can change the balance between reading it and charging.
    _change_balance(session, account_id, 0)
    balance = get_balance(session, account_id)
    charged = max(0, min(amount, balance.available_micro_usd))
    if charged == 0:
        return 0, None
    after = _change_balance(session, account_id, -charged)
    txn = _transaction(session, account_id, kind, -charged, after, reference_id=reference_id, description=description)
    return charged, txn


def _credit_transaction(row: CreditTransactionRow) -> CreditTransaction:
    return CreditTransaction(
        id=row.id,
        account_id=row.account_id,
        kind=row.kind,
        amount_micro_usd=row.amount_micro_usd,
        balance_after_micro_usd=row.balance_after_micro_usd,
        reference_id=row.reference_id,
        api_key_id=row.api_key_id,
        model_id=row.model_id,
        description=row.description,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
    )


def list_transactions(
    session: Session, account_id: str, *, kind: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[CreditTransaction], int]:
    query = select(CreditTransactionRow).where(CreditTransactionRow.account_id == account_id)
    if kind:
        query = query.where(CreditTransactionRow.kind == kind)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(CreditTransactionRow.created_at.desc(), CreditTransactionRow.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [_credit_transaction(r) for r in rows], total


def insert_usage(session: Session, new: NewUsage) -> str:
    usage_id = new_id("use")
    session.add(UsageRow(id=usage_id, created_at=now(), **new.__dict__))
    return usage_id


def insert_usages(session: Session, records: list[NewUsage]) -> list[str]:
    """Many usage records in one executemany on the table (the recorder's group commit; see
    ``inferences.insert_inferences``)."""
    ids = [new_id("use") for _ in records]
    if records:
        created = now()
        pairs = zip(ids, records, strict=True)
        values = [{"id": usage_id, "created_at": created, **new.__dict__} for usage_id, new in pairs]
        session.execute(insert(UsageRow.__table__), values)
    return ids


@dataclass(frozen=True)
class UsageFilter:
    account_id: str
    model_id: str | None = None
    api_key_id: str | None = None
    status: str | None = None
    surface: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _filtered(f: UsageFilter):
    query = select(UsageRow).where(UsageRow.account_id == f.account_id)
    for column, value in (
        (UsageRow.model_id, f.model_id),
        (UsageRow.api_key_id, f.api_key_id),
        (UsageRow.status, f.status),
        (UsageRow.surface, f.surface),
    ):
        if value is not None:
            query = query.where(column == value)
    if f.since is not None:
        query = query.where(UsageRow.created_at >= f.since)
    if f.until is not None:
        query = query.where(UsageRow.created_at < f.until)
    return query


def list_usage(session: Session, f: UsageFilter, *, limit: int, offset: int) -> tuple[list[UsageRecord], UsageTotals]:
    query = _filtered(f)
    sub = query.subquery()
    totals = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(sub.c.prompt_tokens), 0),
            func.coalesce(func.sum(sub.c.completion_tokens), 0),
            func.coalesce(func.sum(sub.c.cost_micro_usd), 0),
            func.coalesce(func.sum(sub.c.cache_read_tokens), 0),
            func.coalesce(func.sum(sub.c.cache_write_tokens), 0),
        )
    ).one()
    newest_first = (UsageRow.created_at.desc(), UsageRow.id.desc())
    # The page's ids from the index alone, then only those rows (see list_inferences).
    page_ids = query.with_only_columns(UsageRow.id).order_by(*newest_first).limit(limit).offset(offset)
    rows = session.execute(select(*UsageRow.__table__.c).where(UsageRow.id.in_(page_ids)).order_by(*newest_first))
    records = [_usage_record(row) for row in rows]
    return records, UsageTotals(*(int(value) for value in totals))


def iter_usage(session: Session, f: UsageFilter, *, batch: int) -> Iterator[list[UsageRecord]]:
    """Every matching record, newest first, in batches read from one query as they are consumed (for exports
    of any size: no offset rescans). Plain rows, not ORM objects: building 100,000 entities took most of an
    export's time. The session must stay open, and on one thread, while it is consumed."""
    columns = UsageRow.__table__.c
    query = (
        _filtered(f)
        .with_only_columns(*columns)
        .order_by(UsageRow.created_at.desc(), UsageRow.id.desc())
        .execution_options(yield_per=batch)
    )
    for rows in session.execute(query).partitions():
        yield [_usage_record(row) for row in rows]


def _usage_record(row: Row) -> UsageRecord:
    """A record from a plain row of the table's columns (not an ORM object: see ``iter_usage``)."""
    return UsageRecord(**{**row._mapping, "created_at": as_utc(row.created_at)})
