"""The in-process moving window against ``limits``' own (memory) implementation of the same strategy."""

import asyncio

import pytest
from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from outrider.services import rate_limits
from outrider.services.rate_limits import LocalWindows, windows_for


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(rate_limits.time, "time", clock.time)
    return clock


def test_a_moving_window_counts_every_hit_of_the_last_period(clock):
    windows, item = LocalWindows(), parse("3/minute")

    async def run():
        assert [await windows.hit(item, "chat", "key", "k1") for _ in range(4)] == [True, True, True, False]
        assert await windows.hit(item, "chat", "key", "k2")  # counters are per identifier
        stats = await windows.get_window_stats(item, "chat", "key", "k1")
        assert stats.remaining == 0 and stats.reset_time == clock.now + 60
        clock.now += 30
        assert not await windows.hit(item, "chat", "key", "k1")  # still inside the window
        clock.now += 30.001  # the first three hits left the window together
        assert (await windows.get_window_stats(item, "chat", "key", "k1")).remaining == 3
        assert await windows.hit(item, "chat", "key", "k1")

    asyncio.run(run())


def test_costs_count_as_many_hits_and_a_refused_hit_counts_nothing(clock):
    windows, item = LocalWindows(), parse("100/minute")

    async def run():
        assert await windows.hit(item, "tpm", "k", cost=60)
        assert not await windows.hit(item, "tpm", "k", cost=41)
        assert (await windows.get_window_stats(item, "tpm", "k")).remaining == 40
        assert await windows.hit(item, "tpm", "k", cost=40)
        clock.now += 61
        assert (await windows.get_window_stats(item, "tpm", "k")).remaining == 100

    asyncio.run(run())


def test_idle_counters_are_swept(clock):
    windows, item = LocalWindows(), parse("10/second")
    windows.SWEEP_EVERY = 5

    async def run():
        for n in range(5):
            await windows.hit(item, "g", str(n))
        clock.now += 2
        for _ in range(5):
            await windows.hit(item, "g", "busy")

    asyncio.run(run())
    assert [key[2:] for key in windows._hits] == [("g", "busy")]


def test_it_agrees_with_the_limits_library_on_a_burst():
    item = parse("50/minute")

    async def run(windows) -> list[tuple[bool, int]]:
        seen = []
        for n in range(80):
            allowed = await windows.hit(item, "g", "k", cost=1 + n % 3)
            seen.append((allowed, (await windows.get_window_stats(item, "g", "k")).remaining))
        return seen

    ours = asyncio.run(run(LocalWindows()))
    theirs = asyncio.run(run(MovingWindowRateLimiter(storage_from_string("async+memory://"))))
    assert ours == theirs


def test_memory_urls_use_the_local_windows_and_others_go_through_limits():
    assert isinstance(windows_for("memory://"), LocalWindows)
    assert isinstance(windows_for("async+memory://"), LocalWindows)


def test_a_request_counts_in_all_its_windows_or_in_none(clock):
    windows = LocalWindows()
    # its key's and its account's windows for the group, and a short one standing for the key's own limit
    request = [
        (parse("5/minute"), ("chat", "key", "k1")),
        (parse("6/minute"), ("chat", "account", "a1")),
        (parse("3/second"), ("rpm", "k1")),
    ]

    async def run():
        seen = []
        for _ in range(4):
            seen.append([(fits, stats.remaining) for fits, stats in await windows.hit_all(request)])
        return seen

    seen = asyncio.run(run())
    assert seen[:3] == [
        [(True, 4), (True, 5), (True, 2)],
        [(True, 3), (True, 4), (True, 1)],
        [(True, 2), (True, 3), (True, 0)],
    ]
    # the per-second window is full: refused, and the other two windows did not count it
    assert seen[3] == [(True, 2), (True, 3), (False, 0)]
    clock.now += 1.5
    assert [fits for fits, _ in asyncio.run(windows.hit_all(request))] == [True, True, True]
