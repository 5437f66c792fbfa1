"""What API processes share through Redis, with two instances standing for two processes on one real Redis:
key and user invalidations, circuit-breaker transitions and rate-limit windows."""

from __future__ import annotations

import asyncio
import time

import pytest
from limits import parse

from outrider.backends.upstream_health import UpstreamMonitor
from outrider.services.broadcast import RESYNC, Broadcast, RedisBroadcast
from outrider.services.rate_limits import windows_for
from tests.waiting import wait_until_async


async def healthy() -> None:
    return None


def monitor(model_id: str) -> UpstreamMonitor:
    return UpstreamMonitor(model_id, healthy, ttl_s=30, failure_threshold=2, cooldown_s=60)


def test_without_redis_a_change_reaches_this_process_only_and_at_once():
    heard: list[dict] = []
    local = Broadcast()
    local.on("key", heard.append)
    local.publish("key", id="key_1")
    assert not local.shared and heard == [{"kind": "key", "origin": local.origin, "id": "key_1"}]


@pytest.fixture
async def pair(redis_server):
    one, two = RedisBroadcast(redis_server.url), RedisBroadcast(redis_server.url)
    await one.start()
    await two.start()
    yield one, two
    await one.stop()
    await two.stop()


async def test_a_change_published_by_one_process_reaches_the_other_once(pair):
    one, two = pair
    heard_one: list[dict] = []
    heard_two: list[dict] = []
    one.on("key", heard_one.append)
    two.on("key", heard_two.append)
    one.publish("key", id="key_1")
    await wait_until_async(lambda: heard_two, what="the other process to hear the change")
    await asyncio.sleep(0.05)  # its own message comes back from Redis too: it must not be applied twice
    assert [m["id"] for m in heard_one] == ["key_1"] and [m["id"] for m in heard_two] == ["key_1"]


async def test_breaker_transitions_are_shared_and_a_reconnect_resyncs(pair, redis_server):
    from outrider.backends.upstream import UpstreamProviders

    one, two = pair
    here, there = monitor("up/m"), monitor("up/m")
    for broadcast, mine in ((one, here), (two, there)):
        providers = UpstreamProviders.__new__(UpstreamProviders)
        providers.models = {"up/m": type("Endpoint", (), {"monitor": mine})()}
        providers.share_breakers(broadcast)

    here.report_failure("HTTP 503")
    assert there.is_available()  # one failure: closed in both
    here.report_failure("HTTP 503")  # the second opens it here, and so there
    await wait_until_async(lambda: not there.is_available(), what="the breaker to open in the other process")
    assert "HTTP 503" in there.unavailable_reason() and there.state == "open"
    here.report_success()
    await wait_until_async(there.is_available, what="the breaker to close in the other process")

    resynced: list[dict] = []
    two.on(RESYNC, resynced.append)
    import redis

    redis.Redis.from_url(redis_server.url).client_kill_filter(_type="pubsub")  # both listeners lose Redis
    await wait_until_async(lambda: resynced, timeout=15, what="a resync after the reconnect")


async def test_rate_limit_windows_in_redis_are_shared_by_two_processes(redis_server):
    from outrider.services.redis_windows import RedisWindows

    limit = parse("5/minute")
    first, second = windows_for(redis_server.url), windows_for(redis_server.url)
    assert isinstance(first, RedisWindows)  # one round trip per window, not limits' two
    allowed = [await (first if i % 2 else second).hit(limit, "chat", "key", "shared-window") for i in range(8)]
    assert allowed == [True] * 5 + [False] * 3
    stats = await first.get_window_stats(limit, "chat", "key", "shared-window")
    assert stats.remaining == 0 and 0 < stats.reset_time - time.time() <= 60
    await second.clear(limit, "chat", "key", "shared-window")
    counted, stats = await first.hit_with_stats(limit, "chat", "key", "shared-window")
    assert counted and stats.remaining == 4

    tokens = parse("100/minute")  # costs: a key's tokens per minute
    assert await first.hit(tokens, "tpm", "k", cost=60) and not await second.hit(tokens, "tpm", "k", cost=41)
    assert await second.hit(tokens, "tpm", "k", cost=40)
    assert (await first.get_window_stats(tokens, "tpm", "k")).remaining == 0


async def test_hits_leave_a_redis_window_after_its_period(redis_server):
    second = parse("3/second")
    windows = windows_for(redis_server.url)
    assert [await windows.hit(second, "expiry", cost=c) for c in (2, 1, 1)] == [True, True, False]
    await asyncio.sleep(1.05)  # both hits have left the window: their costs are taken off the sum
    counted, stats = await windows.hit_with_stats(second, "expiry", cost=3)
    assert counted and stats.remaining == 0


async def test_a_request_counts_in_all_its_redis_windows_or_in_none_like_in_memory(redis_server):
    from outrider.services.rate_limits import LocalWindows

    request = [
        (parse("4/minute"), ("chat", "key", "all-k")),
        (parse("5/minute"), ("chat", "account", "all-a")),
        (parse("3/minute"), ("rpm", "all-k")),
    ]
    other_key = [(parse("4/minute"), ("chat", "key", "all-k2")), request[1]]
    first, second, local = windows_for(redis_server.url), windows_for(redis_server.url), LocalWindows()

    async def outcomes(store, processes) -> list[list[tuple[bool, int]]]:
        seen = []
        for n in range(6):  # the account's window is shared with another key's requests
            hits = request if n % 2 == 0 else other_key
            seen.append([(fits, stats.remaining) for fits, stats in await processes[n % len(processes)].hit_all(hits)])
        return seen

    shared = await outcomes(first, [first, second])
    assert shared == await outcomes(local, [local])
    assert shared[4] == [(True, 1), (True, 0), (True, 0)]  # the account's fifth request fills two windows
    assert shared[5] == [(True, 2), (False, 0)]  # the other key has room, the account has none: refused
    limit, identifiers = request[0]
    assert (await second.get_window_stats(limit, *identifiers)).remaining == 1
    limit, identifiers = other_key[0]
    assert (await second.get_window_stats(limit, *identifiers)).remaining == 2  # the refusal counted nothing


async def test_concurrent_requests_share_script_calls_and_are_counted_exactly(redis_server):
    windows = windows_for(redis_server.url)
    script, calls = windows._batch, []

    async def counted_script(**kw):
        calls.append(len(kw["args"]))
        return await script(**kw)

    windows._batch = counted_script
    limit = parse("30/minute")
    request = [(limit, ("chat", "key", "burst")), (parse("1000/minute"), ("chat", "account", "burst"))]
    outcomes = await asyncio.gather(*(windows.hit_all(request) for _ in range(50)))
    assert [fits for (fits, _), _ in outcomes] == [True] * 30 + [False] * 20  # in the order they were asked
    assert [stats.remaining for (_, stats), _ in outcomes[:30]] == list(range(29, -1, -1))
    account_has_room, account = outcomes[-1][1]
    assert account_has_room and account.remaining == 970  # the refused twenty counted nowhere
    assert len(calls) < 5  # fifty requests, a few round trips
