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
        q.settle_many(s, [q.Settlement(account.id, 700, 900, "usage", "inf_1", None, "m")])
        (charged,), _ = q.list_transactions(s, account.id, kind="usage")
    assert charged.amount_micro_usd == -700  # capped at what was reserved
    assert balance(db, account.id) == (300, 0)
    with db.session() as s:
        q.reserve(s, account.id, 100)
        q.settle_many(s, [q.Settlement(account.id, 100, 0, "usage", None, None, None)])
        assert q.list_transactions(s, account.id, kind="usage")[1] == 1  # no charge row for nothing
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


def test_a_batch_of_reservations_reserves_each_one_that_fits_in_order(db):
    rich, poor = make_account(db, "rich"), make_account(db, "poor")
    with db.session() as s:
        q.add_credit(s, rich.id, 1000)
        q.add_credit(s, poor.id, 250)
    asks = [(rich.id, 300), (poor.id, 100), (rich.id, 300), (poor.id, 100), (poor.id, 100), (rich.id, 300)]
    with db.session() as s:
        # the rich account's three fit together (one statement); the poor one's third does not fit after two
        assert q.reserve_many(s, asks) == [True, True, True, True, False, True]
    assert balance(db, rich.id) == (1000, 900) and balance(db, poor.id) == (250, 200)
    with db.session() as s:
        assert q.reserve_many(s, [(rich.id, 60), (rich.id, 50), (rich.id, 40)]) == [True, False, True]
        assert q.reserve_many(s, []) == []
    assert balance(db, rich.id) == (1000, 1000)


def test_a_batch_of_settlements_charges_like_one_by_one(db):
    first, second = make_account(db, "first"), make_account(db, "second")
    with db.session() as s:
        q.add_credit(s, first.id, 1000)
        q.add_credit(s, second.id, 1000)
        assert q.reserve_many(s, [(first.id, 100), (first.id, 200), (second.id, 50), (first.id, 300)]) == [True] * 4

    def charge(account_id: str, reserved: int, cost: int, ref: str) -> q.Settlement:
        return q.Settlement(account_id, reserved, cost, "inference", ref, "key_1", "m")

    with db.session() as s:
        q.settle_many(
            s,
            [
                charge(first.id, 100, 40, "a"),
                charge(first.id, 200, 0, "b"),  # nothing charged: the hold is only freed
                charge(second.id, 50, 80, "c"),  # capped at its reservation
                charge(first.id, 300, 100, "d"),
            ],
        )
        q.settle_many(s, [])
    assert balance(db, first.id) == (860, 0) and balance(db, second.id) == (950, 0)
    with db.session() as s:
        charges, total = q.list_transactions(s, first.id, kind="inference")
        (capped,), _ = q.list_transactions(s, second.id, kind="inference")
    # newest first, each with the balance after it as if settled in order
    assert total == 2 and [(t.reference_id, t.amount_micro_usd, t.balance_after_micro_usd) for t in charges] == [
        ("d", -100, 860),
        ("a", -40, 960),
    ]
    assert (capped.amount_micro_usd, capped.balance_after_micro_usd, capped.api_key_id) == (-50, 950, "key_1")
