"""Rate limits per endpoint group, counted per API key and per account (library ``limits``).

Groups: ``inference`` (native /inference), ``chat`` (the OpenAI and Anthropic generation endpoints),
``embeddings`` (``POST /v1/embeddings``),
``generate`` and ``training`` (their jobs' endpoints). A request must fit both its key's window and its
account's window (several keys cannot multiply an account's allowance). Counters live in memory by
default, or in Redis (``OUTRIDER_RATE_LIMIT_STORAGE=redis://...``, ``redis_windows.RedisWindows``: one round trip
per window) when several API processes serve; any other ``limits`` storage URL goes through ``limits``.

A key may also carry its own ``rpm_limit`` (requests per minute over every group) and ``tpm_limit``
(tokens per minute: a request is refused while the key's last minute already used its tokens; each call's
tokens are counted when it ends).

Counting is a moving window (every hit of the last period counts). In memory it is ``LocalWindows``: a
deque per counter, updated on the event loop without a lock or a thread. ``limits``' own async memory
storage hands each expiry sweep to a thread (``asyncio.to_thread`` per counter, after each hit), which
cost the gateway about 0.2 ms per request on 2 cores (``bench/gateway_overhead.py``).
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from limits import RateLimitItem, RateLimitItemPerMinute, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from outrider.core.errors import RateLimited
from outrider.services.accounts import Principal

GROUPS = ("inference", "chat", "embeddings", "generate", "training")


@dataclass(frozen=True)
class WindowState:
    limit: int
    remaining: int
    reset_epoch: float

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.remaining, 0)),
            "X-RateLimit-Reset": str(math.ceil(self.reset_epoch)),
        }


def parse_limits(configured: dict[str, str]) -> dict[str, RateLimitItem]:
    unknown = set(configured) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown rate-limit groups {sorted(unknown)}; known: {', '.join(GROUPS)}")
    return {group: parse(value) for group, value in configured.items() if value}


class Windows(Protocol):
    """Moving-window counters: ``hit`` counts ``cost`` when it fits (True) or nothing (False)."""

    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool: ...

    async def hit_with_stats(
        self, item: RateLimitItem, *identifiers: str, cost: int = 1
    ) -> tuple[bool, WindowStats]: ...

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats: ...

    async def clear(self, item: RateLimitItem, *identifiers: str) -> None: ...


@dataclass(frozen=True)
class WindowStats:
    reset_time: float  # when the oldest hit in the window leaves it (epoch seconds)
    remaining: int


class LocalWindows:
    """In-process moving windows: per counter, a deque of (time, cost) of the last period and its sum.
    Only the event loop touches it, so there is no lock."""

    SWEEP_EVERY = 10_000  # hits between two sweeps of counters left idle

    def __init__(self) -> None:
        self._hits: dict[tuple, deque[tuple[float, int]]] = {}
        self._sums: dict[tuple, int] = {}
        self._since_sweep = 0

    def _window(self, item: RateLimitItem, identifiers: tuple[str, ...], now: float) -> tuple[tuple, int]:
        key = (item.amount, item.get_expiry(), *identifiers)
        hits = self._hits.get(key)
        if hits is not None:
            cutoff = now - item.get_expiry()
            total = self._sums[key]
            while hits and hits[0][0] <= cutoff:
                total -= hits.popleft()[1]
            self._sums[key] = total
        return key, self._sums.get(key, 0)

    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        now = time.time()
        key, used = self._window(item, identifiers, now)
        if used + cost > item.amount:
            return False
        self._hits.setdefault(key, deque()).append((now, cost))
        self._sums[key] = used + cost
        self._since_sweep += 1
        if self._since_sweep >= self.SWEEP_EVERY:
            self._sweep(now)
        return True

    async def hit_with_stats(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> tuple[bool, WindowStats]:
        return await self.hit(item, *identifiers, cost=cost), await self.get_window_stats(item, *identifiers)

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        now = time.time()
        key, used = self._window(item, identifiers, now)
        hits = self._hits.get(key)
        oldest = hits[0][0] if hits else now
        return WindowStats(oldest + item.get_expiry(), max(0, item.amount - used))

    async def clear(self, item: RateLimitItem, *identifiers: str) -> None:
        key = (item.amount, item.get_expiry(), *identifiers)
        self._hits.pop(key, None)
        self._sums.pop(key, None)

    def _sweep(self, now: float) -> None:
        self._since_sweep = 0
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1][0] <= now - k[1]]:
            del self._hits[key], self._sums[key]


class LimitsWindows:
    """Any other ``limits`` storage (``memcached://``, ``async+redis://`` through ``limits``' own client...)."""

    def __init__(self, storage_url: str) -> None:
        url = storage_url if storage_url.startswith("async+") else f"async+{storage_url}"
        self._limiter = MovingWindowRateLimiter(storage_from_string(url))

    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        return await self._limiter.hit(item, *identifiers, cost=cost)

    async def hit_with_stats(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> tuple[bool, WindowStats]:
        return await self.hit(item, *identifiers, cost=cost), await self.get_window_stats(item, *identifiers)

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        stats = await self._limiter.get_window_stats(item, *identifiers)
        return WindowStats(stats.reset_time, stats.remaining)

    async def clear(self, item: RateLimitItem, *identifiers: str) -> None:
        await self._limiter.clear(item, *identifiers)


def windows_for(storage_url: str) -> Windows:
    if storage_url.removeprefix("async+").startswith("memory://"):
        return LocalWindows()
    if storage_url.startswith(("redis://", "rediss://")):
        from outrider.services.redis_windows import RedisWindows

        return RedisWindows(storage_url)
    return LimitsWindows(storage_url)


class RateLimiter:
    def __init__(self, configured: dict[str, str], storage_url: str = "memory://") -> None:
        self._items = parse_limits(configured)
        self._limiter: Windows = windows_for(storage_url)

    @property
    def windows(self) -> Windows:
        """The counters (shared with the sign-in throttle, so that it is process-wide with Redis too)."""
        return self._limiter

    async def hit(self, group: str, who: Principal) -> WindowState | None:
        """Count one request; raise ``RateLimited`` (with Retry-After and X-RateLimit-* headers) when over."""
        item = self._items.get(group)
        states = []
        # A group without a configured limit still counts against the key's own request and token limits.
        for scope, ident in (("key", who.caller_id), ("account", who.account.id)) if item is not None else ():
            allowed, stats = await self._limiter.hit_with_stats(item, group, scope, ident)
            state = WindowState(item.amount, stats.remaining, stats.reset_time)
            if not allowed:
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                raise RateLimited(
                    f"rate limit of {item.amount} {group} requests per {item.GRANULARITY.name} exceeded "
                    f"for this {scope}; retry in {retry_after} s",
                    retry_after=retry_after,
                    headers=state.headers(),
                )
            states.append(state)
        if who.rpm_limit:
            states.append(await self._hit_key_rpm(who))
        if who.tpm_limit:
            states.append(await self._check_key_tpm(who))
        return min(states, key=lambda s: s.remaining) if states else None

    async def _hit_key_rpm(self, who: Principal) -> WindowState:
        item = RateLimitItemPerMinute(who.rpm_limit)
        allowed, stats = await self._limiter.hit_with_stats(item, "rpm", who.caller_id)
        state = WindowState(item.amount, stats.remaining, stats.reset_time)
        if not allowed:
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            raise RateLimited(
                f"this key's limit of {item.amount} requests per minute is exceeded; retry in {retry_after} s",
                retry_after=retry_after,
                headers=state.headers(),
            )
        return state

    async def _check_key_tpm(self, who: Principal) -> WindowState:
        item = RateLimitItemPerMinute(who.tpm_limit)
        stats = await self._limiter.get_window_stats(item, "tpm", who.caller_id)
        if stats.remaining <= 0:
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            state = WindowState(item.amount, 0, stats.reset_time)
            raise RateLimited(
                f"this key's limit of {item.amount} tokens per minute is used up; retry in {retry_after} s",
                retry_after=retry_after,
                headers=state.headers(),
            )
        return WindowState(item.amount, stats.remaining, stats.reset_time)

    async def meter_tokens(self, who: Principal, tokens: int) -> None:
        """Count a finished call's tokens against its key's TPM window (capped at what is left, so the
        window fills up instead of refusing to count a large call)."""
        if not who.tpm_limit or tokens <= 0:
            return
        item = RateLimitItemPerMinute(who.tpm_limit)
        stats = await self._limiter.get_window_stats(item, "tpm", who.caller_id)
        cost = min(tokens, stats.remaining)
        if cost > 0:
            await self._limiter.hit(item, "tpm", who.caller_id, cost=cost)
