"""Rate limits per endpoint group, counted per API key and per account (library ``limits``).

Groups: ``inference`` (native /inference), ``chat`` (the OpenAI and Anthropic generation endpoints),
``embeddings`` (``POST /v1/embeddings``),
``generate`` and ``training`` (their jobs' endpoints). A request must fit both its key's window and its
account's window (several keys cannot multiply an account's allowance). Counters live in memory by
default, or in Redis (``OUTRIDER_RATE_LIMIT_STORAGE=redis://...``, ``redis_windows.RedisWindows``: one round trip
per request) when several API processes serve; any other ``limits`` storage URL goes through ``limits``.

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

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from outrider.core.errors import RateLimited
from outrider.core.rate_limit_groups import Window, WindowStats, parse_limits
from outrider.services.accounts import Principal


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


class Windows(Protocol):
    """Moving-window counters: ``hit`` counts ``cost`` when it fits (True) or nothing (False)."""

    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool: ...

    async def hit_with_stats(
        self, item: RateLimitItem, *identifiers: str, cost: int = 1
    ) -> tuple[bool, WindowStats]: ...

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats: ...

    async def clear(self, item: RateLimitItem, *identifiers: str) -> None: ...

    async def hit_all(self, windows: list[Window]) -> list[tuple[bool, WindowStats]]:
        """Count one hit in every window if each has room for it, else in none: per window, whether it had
        room and its state after."""
        ...


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

    async def hit_all(self, windows: list[Window]) -> list[tuple[bool, WindowStats]]:
        # No await in here: nothing else runs on the loop between the check and the hits.
        now = time.time()
        seen = [(item, *self._window(item, identifiers, now)) for item, identifiers in windows]
        counted = all(used + 1 <= item.amount for item, _, used in seen)
        outcomes = []
        for item, key, used in seen:
            if counted:
                self._hits.setdefault(key, deque()).append((now, 1))
                self._sums[key] = used = used + 1
            hits = self._hits.get(key)
            reset = (hits[0][0] if hits else now) + item.get_expiry()
            outcomes.append((counted or used + 1 <= item.amount, WindowStats(reset, max(0, item.amount - used))))
        if counted:
            self._since_sweep += 1
            if self._since_sweep >= self.SWEEP_EVERY:
                self._sweep(now)
        return outcomes

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

    async def hit_all(self, windows: list[Window]) -> list[tuple[bool, WindowStats]]:
        """One window after the other, stopping at the first without room (its predecessors keep their hit):
        ``limits`` has no script that does it at once."""
        seen = []
        for item, identifiers in windows:
            seen.append(await self.hit_with_stats(item, *identifiers))
            if not seen[-1][0]:
                break
        return seen


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
        # A group without a configured limit still counts against the key's own request and token limits.
        windows: list[tuple[str, Window]] = []  # (what a refusal says, the window)
        if item is not None:
            per = f"rate limit of {item.amount} {group} requests per {item.GRANULARITY.name} exceeded for this"
            windows.append((f"{per} key", (item, (group, "key", who.caller_id))))
            windows.append((f"{per} account", (item, (group, "account", who.account.id))))
        if who.rpm_limit:
            rpm = RateLimitItemPerMinute(who.rpm_limit)
            windows.append(
                (f"this key's limit of {rpm.amount} requests per minute is exceeded", (rpm, ("rpm", who.caller_id)))
            )
        states = []
        # Every window in one call (one round trip with Redis): counted in all of them, or in none when one has
        # no room (``limits``' stores keep the hits before the full window, and stop there: hence not strict).
        outcomes = await self._limiter.hit_all([window for _, window in windows]) if windows else []
        for (refusal, (limit, _)), (allowed, stats) in zip(windows, outcomes, strict=False):
            state = WindowState(limit.amount, stats.remaining, stats.reset_time)
            if not allowed:
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                raise RateLimited(
                    f"{refusal}; retry in {retry_after} s", retry_after=retry_after, headers=state.headers()
                )
            states.append(state)
        if who.tpm_limit:
            states.append(await self._check_key_tpm(who))
        return min(states, key=lambda s: s.remaining) if states else None

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
