"""Moving-window rate-limit counters in Redis, one round trip per request at most.

``limits``' moving window makes two round trips for each window a request is counted in (the count, then the
window's state for the X-RateLimit-* headers), four for a request checked against its key and its account.
Here one Lua script counts a request in all its windows (its key's, its account's, the key's own requests per
minute) if each has room, or in none, and returns their states, atomically; the requests that arrive while a
call is in flight go together in the next one. (The script touches several windows' keys: one Redis server, or
a primary with replicas; not a Redis Cluster.)

Each counter is a sorted set of ``nonce:cost`` members scored by the time of their hit (Redis's own clock, so API
hosts with drifting clocks still share one window) and the running sum of their costs; members older than the
period are dropped (and taken off the sum) on every call, and both keys expire when idle.
"""

from __future__ import annotations

import asyncio
import secrets

from limits import RateLimitItem

from outrider.core.rate_limit_groups import Window, WindowStats

# A batch of requests, each counted in one or more windows. KEYS: per window of each request in order, its hits (a
# sorted set) and the sum of their costs. ARGV: a nonce, the number of requests, then per request its number of
# windows and, per window, period (s), limit and cost (0: only read the state). A request counts its cost in every
# one of its windows if each has room for it, else in none; requests are taken in order (a later one sees an
# earlier one's hits). Returns, per request and window, {1 if it had room (and cost > 0) else 0, remaining, reset
# epoch as a string (Lua numbers would lose the fraction)}. Each window costs O(log n) plus the hits it expires,
# however full it is.
MOVING_WINDOWS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local k, a = 0, 3
local results = {}
for r = 1, tonumber(ARGV[2]) do
  local windows = tonumber(ARGV[a])
  local used, room = {}, true
  for w = 1, windows do
    local hits, total = KEYS[k + 2 * w - 1], KEYS[k + 2 * w]
    local period, limit = tonumber(ARGV[a + 3 * w - 2]), tonumber(ARGV[a + 3 * w - 1])
    local cost = tonumber(ARGV[a + 3 * w])
    local expired = redis.call('ZRANGEBYSCORE', hits, '-inf', now - period)
    if #expired > 0 then
      local gone = 0
      for _, member in ipairs(expired) do
        gone = gone + tonumber(string.match(member, ':(%d+)$'))
      end
      redis.call('ZREMRANGEBYSCORE', hits, '-inf', now - period)
      redis.call('DECRBY', total, gone)
    end
    used[w] = tonumber(redis.call('GET', total) or '0')
    if cost == 0 or used[w] + cost > limit then
      room = false
    end
  end
  local result = {}
  for w = 1, windows do
    local hits, total = KEYS[k + 2 * w - 1], KEYS[k + 2 * w]
    local period, limit = tonumber(ARGV[a + 3 * w - 2]), tonumber(ARGV[a + 3 * w - 1])
    local cost = tonumber(ARGV[a + 3 * w])
    local fits = cost > 0 and used[w] + cost <= limit
    if room then
      redis.call('ZADD', hits, now, ARGV[1] .. '.' .. r .. ':' .. cost)
      redis.call('INCRBY', total, cost)
      local ttl = math.ceil(period * 1000)
      redis.call('PEXPIRE', hits, ttl)
      redis.call('PEXPIRE', total, ttl)
      used[w] = used[w] + cost
    end
    local oldest = redis.call('ZRANGE', hits, 0, 0, 'WITHSCORES')
    local reset = now + period
    if #oldest > 0 then
      reset = tonumber(oldest[2]) + period
    end
    result[w] = {fits and 1 or 0, limit - used[w], tostring(reset)}
  end
  results[r] = result
  k = k + 2 * windows
  a = a + 1 + 3 * windows
end
return results
"""

# One window of a request: its limit, its identifiers and the cost counted in it.
Counted = tuple[RateLimitItem, tuple[str, ...], int]


class RedisWindows:
    """Implements ``rate_limits.Windows`` on Redis (redis-py's asyncio client)."""

    PREFIX = "outrider:rl"
    MAX_BATCH = 256  # requests per script call: a script holds Redis while it runs

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self._client = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self._batch = self._client.register_script(MOVING_WINDOWS)
        # Requests waiting for the next script call, and the task making the calls (see ``_counted``).
        self._queue: list[tuple[list[Counted], asyncio.Future]] = []
        self._sender: asyncio.Task | None = None

    def _keys(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> list[str]:
        # One hash tag for both keys of a window.
        tag = ":".join((str(item.amount), str(item.get_expiry()), *identifiers))
        return [f"{self.PREFIX}:{{{tag}}}:hits", f"{self.PREFIX}:{{{tag}}}:sum"]

    async def hit_with_stats(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> tuple[bool, WindowStats]:
        return (await self._counted([(item, identifiers, cost)]))[0]

    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        return (await self._counted([(item, identifiers, cost)]))[0][0]

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        return (await self._counted([(item, identifiers, 0)]))[0][1]

    async def hit_all(self, windows: list[Window]) -> list[tuple[bool, WindowStats]]:
        return await self._counted([(item, identifiers, 1) for item, identifiers in windows])

    async def _counted(self, windows: list[Counted]) -> list[tuple[bool, WindowStats]]:
        """One request, counted with the other requests that arrived meanwhile in one script call: under load, a
        round trip (and the client's work around it, about 0.15 ms of CPU in redis-py) per batch, not per request."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((windows, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_queued())
        return await future

    async def _send_queued(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.MAX_BATCH], self._queue[self.MAX_BATCH :]
            keys, args = [], [secrets.token_hex(6), len(batch)]
            for windows, _ in batch:
                args.append(len(windows))
                for item, identifiers, cost in windows:
                    keys += self._keys(item, identifiers)
                    args += [item.get_expiry(), item.amount, cost]
            try:
                replies = await self._batch(keys=keys, args=args)
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), reply in zip(batch, replies, strict=True):
                if not future.done():  # its caller may have been cancelled
                    future.set_result(
                        [(bool(fits), WindowStats(float(reset), max(0, int(left)))) for fits, left, reset in reply]
                    )

    async def clear(self, item: RateLimitItem, *identifiers: str) -> None:
        await self._client.delete(*self._keys(item, identifiers))
