"""Group commit on a server database whose connections die: a batch found on a dead connection is written once
more on a fresh one, and a connection left idle is pinged (and replaced) before use."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from outrider.storage import db as db_module
from outrider.storage.group_commit import GroupCommit
from outrider.storage.queries import accounts as accounts_q
from outrider.storage.queries import billing as billing_q
from tests.databases import make_account

pytestmark = pytest.mark.parametrize("db", ["postgresql"], indirect=True)


def kill_other_connections(db) -> int:
    """What a database restart does to the pool: every other backend of this database is terminated."""
    with db.engine.connect() as admin:
        killed = admin.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
        admin.rollback()
    return int(killed)


def test_a_batch_on_a_dead_connection_is_written_on_a_fresh_one(db):
    account = make_account(db, "survivor")
    with db.session() as s:
        billing_q.add_credit(s, account.id, 1000)
    # Two pooled connections: the one the kill runs on, and the one the batch will be handed (dead by then).
    with db.engine.connect(), db.engine.connect():
        pass

    def reserve(session, amounts: list[int]) -> list[bool]:
        return billing_q.reserve_many(session, [(account.id, amount) for amount in amounts])

    async def run() -> list[bool]:
        commits = GroupCommit(db, reserve)
        kill_other_connections(db)
        return list(await asyncio.gather(*(commits.submit(100) for _ in range(3))))

    assert asyncio.run(run()) == [True, True, True]
    with db.session() as s:
        assert billing_q.get_balance(s, account.id).reserved_micro_usd == 300  # written exactly once


def test_a_connection_idle_past_the_limit_is_pinged_and_replaced(db, monkeypatch):
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 0.0)  # every checked-in connection counts as idle
    with db.engine.connect(), db.engine.connect():
        pass
    assert kill_other_connections(db) >= 1
    with db.session() as s:  # a plain read on the pool: no error reaches the caller
        assert accounts_q.get_account_by_name(s, "nobody") is None
