"""The judge configurations the recorder samples with: cached per account, dropped at once on a change here or
broadcast from another process, and never cached from a read that a change overtook."""

from __future__ import annotations

import pytest

from outrider.services.broadcast import RESYNC, Broadcast
from outrider.services.judge_configs import CHANGE, SamplingCache
from outrider.storage.queries import judging as q
from tests.databases import make_account


@pytest.fixture
def db(tmp_path):
    from tests.databases import migrated_database

    with migrated_database(tmp_path) as database:
        yield database


def put(db, account_id: str, rate: float, project: str | None = None) -> None:
    with db.session() as s:
        q.put_config(s, account_id=account_id, project_id=project, judge_model="j", sampling_rate=rate, actor="t")


def read(db, sampling: SamplingCache, *accounts: str) -> q.SamplingConfigs:
    with db.session() as s:
        return sampling.configs(s, set(accounts))


def test_configs_are_cached_until_a_change_drops_them(db):
    judged, plain = make_account(db, "judged"), make_account(db, "plain")
    put(db, judged.id, 0.5)
    sampling = SamplingCache(Broadcast(), ttl_s=600)
    assert read(db, sampling, judged.id, plain.id) == {(judged.id, ""): ("j", 0.5)}
    put(db, judged.id, 1.0, project="p")  # written behind the cache's back (another process without Redis)
    put(db, plain.id, 1.0)
    assert read(db, sampling, judged.id, plain.id) == {(judged.id, ""): ("j", 0.5)}  # both cached, "none" too
    sampling.changed(plain.id)  # what JudgeConfigService does after a change
    assert read(db, sampling, judged.id, plain.id) == {(judged.id, ""): ("j", 0.5), (plain.id, ""): ("j", 1.0)}
    sampling.forget(None)
    assert len(read(db, sampling, judged.id, plain.id)) == 3


def test_a_read_overtaken_by_a_change_is_not_cached_and_ttl_zero_reads_every_time(db, monkeypatch):
    account = make_account(db, "raced")
    broadcast = Broadcast()
    sampling = SamplingCache(broadcast, ttl_s=600)
    real_read = q.sampling_configs

    def read_then_changed(session, accounts):
        found = real_read(session, accounts)
        put(db, account.id, 1.0)  # committed after the read...
        broadcast.publish(CHANGE, account_id=account.id)  # ...and announced before the read is cached
        return found

    monkeypatch.setattr(q, "sampling_configs", read_then_changed)
    assert read(db, sampling, account.id) == {}
    monkeypatch.setattr(q, "sampling_configs", real_read)
    assert read(db, sampling, account.id) == {(account.id, ""): ("j", 1.0)}  # the stale "none" was not kept

    uncached = SamplingCache(Broadcast(), ttl_s=0)
    assert read(db, uncached, account.id) == {(account.id, ""): ("j", 1.0)}
    put(db, account.id, 0.25)
    assert read(db, uncached, account.id) == {(account.id, ""): ("j", 0.25)}


async def test_a_change_in_one_process_drops_the_others_cache(db, redis_server):
    from outrider.services.broadcast import RedisBroadcast
    from tests.waiting import wait_until_async

    account = make_account(db, "shared")
    one, two = RedisBroadcast(redis_server.url), RedisBroadcast(redis_server.url)
    await one.start()
    await two.start()
    try:
        here, there = SamplingCache(one, ttl_s=600), SamplingCache(two, ttl_s=600)
        assert read(db, there, account.id) == {}
        put(db, account.id, 1.0)
        here.changed(account.id)
        await wait_until_async(
            lambda: read(db, there, account.id) != {}, what="the other process to drop its cached configs"
        )
        two._deliver({"kind": RESYNC, "origin": "test"})  # a reconnect drops everything
        assert there._cached == {}
    finally:
        await one.stop()
        await two.stop()
