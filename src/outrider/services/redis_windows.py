"""Moving-window rate-limit counters in Redis, one round trip per window.

``limits``' moving window makes two round trips for each window a request is counted in (the count, then the
window's state for the X-RateLimit-* headers), four for a request checked against its key and its account.
Here one Lua script does both, atomically, so that API processes sharing a Redis pay one round trip per
window. Each counter is a sorted set of ``nonce:cost`` members scored by the time of their hit (Redis's own
clock, so API hosts with drifting clocks still share one window) and the running sum of their costs; members
older than the period are dropped (and taken off the sum) on every call, and both keys expire when idle.
"""

from __future__ import annotations

import secrets

from limits import RateLimitItem

from outrider.services.rate_limits import WindowStats

# KEYS[1] the hits (a sorted set), KEYS[2] the sum of their costs; ARGV: period (s), limit, cost (0: only read the
# state), member nonce. Returns {1 if counted else 0, remaining, reset epoch as a string (Lua numbers would lose
# the fraction)}. Each call costs O(log n) plus the hits it expires, however full the window.
MOVING_WINDOW = """
local hits, total = KEYS[1], KEYS[2]
local period = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local expired = redis.call('ZRANGEBYSCORE', hits, '-inf', now - period)
if #expired > 0 then
  local gone = 0
  for _, member in ipairs(expired) do
    gone = gone + tonumber(string.match(member, ':(%d+)$'))
  end
  redis.call('ZREMRANGEBYSCORE', hits, '-inf', now - period)
  redis.call('DECRBY', total, gone)
end
local used = tonumber(redis.call('GET', total) or '0')
local counted = 0
if cost > 0 and used + cost <= limit then
  redis.call('ZADD', hits, now, ARGV[4] .. ':' .. cost)
  redis.call('INCRBY', total, cost)
  local ttl = math.ceil(period * 1000)
  redis.call('PEXPIRE', hits, ttl)
  redis.call('PEXPIRE', total, ttl)
  used = used + cost
  counted = 1
end
local oldest = redis.call('ZRANGE', hits, 0, 0, 'WITHSCORES')
local reset = now + period
if #oldest > 0 then
  reset = tonumber(oldest[2]) + period
end
return {counted, limit - used, tostring(reset)}
"""


class RedisWindows:
    """Implements ``rate_limits.Windows`` on Redis (redis-py's asyncio client)."""

    PREFIX = "outrider:rl"

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self._client = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self._script = self._client.register_script(MOVING_WINDOW)

    def _keys(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> list[str]:
        # One hash tag for both keys: a Redis Cluster keeps them on one node, as a script needs.
        tag = ":".join((str(item.amount), str(item.get_expiry()), *identifiers))
        return [f"{self.PREFIX}:{{{tag}}}:hits", f"{self.PREFIX}:{{{tag}}}:sum"]

    async def _run(self, item: RateLimitItem, identifiers: tuple[str, ...], cost: int) -> tuple[bool, WindowStats]:
        nonce = secrets.token_hex(6)
        counted, remaining, reset = await self._script(
            keys=self._keys(item, identifiers), args=[item.get_expiry(), item.amount, cost, nonce]
        )
        return bool(counted), WindowStats(float(reset), max(0, int(remaining)))

    async def hit_with_stats(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> tuple[bool, WindowStats]:
        return await self._run(item, identifiers, cost)

    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        return (await self._run(item, identifiers, cost))[0]

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        return (await self._run(item, identifiers, 0))[1]

    async def clear(self, item: RateLimitItem, *identifiers: str) -> None:
        await self._client.delete(*self._keys(item, identifiers))
