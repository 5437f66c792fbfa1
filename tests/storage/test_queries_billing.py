"""Credit queries: conditional reservations, settlement capped at the reservation, charges up to the balance,
transactions carrying the balance after them, and usage totals."""

from outrider.storage.queries import billing as q
from outrider.storage.records import NewUsage
from tests.databases import make_account


def balance(db, account_id):
    with db.session() as s:
        found = q.get_balance(s, account_id)
    return found.balance_micro_usd, found.reserved_micro_usd


def test_a_reservation_needs_the_available_balance_and_settles_within_it(db):
    account = make_account(db, "payer")
    with db.session() as s:
        grant = q.add_credit(s, account.id, 1000, description="welcome", created_by="admin")
    assert grant.balance_after_micro_usd == 1000 and grant.kind == "grant"
    with db.session() as s:
        assert q.reserve(s, account.id, 700)
        assert not q.reserve(s, account.id, 400)  # 300 available
    assert balance(db, account.id) == (1000, 700)
    with db.session() as s:
        charged = q.settle(
            s, account.id, reserved=700, cost=900, kind="usage", reference_id="inf_1", api_key_id=None, model_id="m"
        )
    assert charged.amount_micro_usd == -700  # capped at what was reserved
    assert balance(db, account.id) == (300, 0)
    with db.session() as s:
        q.reserve(s, account.id, 100)
        assert (
            q.settle(
                s, account.id, reserved=100, cost=0, kind="usage", reference_id=None, api_key_id=None, model_id=None
            )
            is None
        )
    assert balance(db, account.id) == (300, 0)  # nothing charged, the hold released


def test_charge_up_to_takes_what_is_available_and_reports_it(db):
    account = make_account(db, "job-payer")
    with db.session() as s:
        q.add_credit(s, account.id, 500)
        q.reserve(s, account.id, 200)
    with db.session() as s:
        charged, txn = q.charge_up_to(s, account.id, 1000, kind="training", reference_id="job_1", description="t")
    assert charged == 300 and txn.amount_micro_usd == -300 and txn.balance_after_micro_usd == 200
    with db.session() as s:
        assert q.charge_up_to(s, account.id, 10, kind="training", reference_id=None, description=None) == (0, None)
        assert q.charge_up_to(s, "acct_missing", 10, kind="training", reference_id=None, description=None) == (0, None)


def test_stale_reservations_are_cleared_and_transactions_listed_by_kind(db):
    account = make_account(db, "crashed")
    with db.session() as s:
        q.add_credit(s, account.id, 100)
        q.add_credit(s, account.id, 50, kind="refund")
        q.reserve(s, account.id, 80)
    with db.session() as s:
        assert q.clear_reservations(s) == 1
    assert balance(db, account.id) == (150, 0)
    with db.session() as s:
        everything, total = q.list_transactions(s, account.id)
        refunds, refund_total = q.list_transactions(s, account.id, kind="refund")
        assert q.get_balance(s, "acct_missing") is None
    assert total == 2 and [t.balance_after_micro_usd for t in everything] == [150, 100]  # newest first
    assert refund_total == 1 and refunds[0].amount_micro_usd == 50


def test_usage_is_filtered_paged_and_totalled(db):
    account = make_account(db, "usage")

    def usage(**kw: object) -> NewUsage:
        fields = {
            "api_key_id": "key_1",
            "inference_id": None,
            "surface": "openai",
            "model_id": "m1",
            "model_used": "m1",
            "task": "generate",
            "status": "success",
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "cost_micro_usd": 100,
            "latency_ms": 1.0,
            **kw,
        }
        return NewUsage(account_id=account.id, **fields)

    with db.session() as s:
        q.insert_usage(s, usage())
        q.insert_usages(s, [usage(model_id="m2", surface="native"), usage(status="error", cost_micro_usd=0)])
    with db.session() as s:
        records, totals = q.list_usage(s, q.UsageFilter(account.id), limit=2, offset=0)
        assert len(records) == 2 and (totals.requests, totals.prompt_tokens, totals.cost_micro_usd) == (3, 30, 200)
        m1 = q.list_usage(s, q.UsageFilter(account.id, model_id="m1", status="success"), limit=10, offset=0)
        assert m1[1].requests == 1 and m1[0][0].surface == "openai"
        assert q.list_usage(s, q.UsageFilter(account.id, surface="native"), limit=10, offset=0)[1].requests == 1
