"""Reading every usage record in batches (the CSV export): each matching record once, newest first, in the
order of the paginated list, also when many share one timestamp."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from outrider.services.accounts import Principal
from outrider.services.billing import BillingService
from outrider.storage.queries import billing as billing_q
from outrider.storage.tables import UsageRow
from tests.databases import make_account
from tests.services.test_overview import usage


def test_batches_return_every_record_once_in_list_order(db):
    mine, other = make_account(db, "mine"), make_account(db, "other")
    start = datetime(2026, 5, 1, tzinfo=UTC)
    with db.session() as s:
        for hour in range(4):  # 4 timestamps, 5 records each: batches of 3 split every group
            ids = billing_q.insert_usages(
                s, [usage(mine.id, float(i), status="error" if i == 2 else "success") for i in range(5)]
            )
            s.execute(update(UsageRow).where(UsageRow.id.in_(ids)).values(created_at=start + timedelta(hours=hour)))
        billing_q.insert_usages(s, [usage(other.id, 1.0)])
    billing = BillingService(db)
    who = Principal(account=mine, key=None)
    batches = list(billing.usage_batches(who, batch=3))
    assert [len(b) for b in batches] == [3, 3, 3, 3, 3, 3, 2]
    listed, totals = billing.usage(who, limit=100)
    assert [r.id for b in batches for r in b] == [r.id for r in listed] and totals.requests == 20
    errors = [r for b in billing.usage_batches(who, status="error", batch=3) for r in b]
    assert len(errors) == 4 and {r.status for r in errors} == {"error"}
    assert list(billing.usage_batches(who, since=start + timedelta(days=1))) == []
