"""Changes every API process must see on its next request, broadcast over Redis pub/sub.

Each process keeps its own caches: the key authentication cache (``AccountService``) and each upstream model's
circuit breaker (``UpstreamMonitor``). A change made through one process (a key revoked or its pool changed, a
user's role, password or state changed, a breaker opened or closed) is applied to that process's own caches at
once and published on one Redis channel; every other process applies it when the message arrives, which on
one network is well before its next request. Without ``OUTRIDER_REDIS_URL`` (one process) a change reaches
this process only, as before.

Messages are JSON objects ``{"kind": ..., "origin": ..., ...}``; a process ignores its own. A subscriber that
loses its connection reconnects and delivers a ``resync`` message to its handlers (changes may have been missed
meanwhile: the authentication cache is dropped whole).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

CHANNEL = "outrider:changes"
RESYNC = "resync"
Handler = Callable[[dict[str, Any]], None]


class Broadcast:
    """Changes delivered to this process's handlers only (one API process)."""

    def __init__(self) -> None:
        self.origin = secrets.token_hex(8)  # tells this process's own messages apart
        self._handlers: dict[str, list[Handler]] = {}

    @property
    def shared(self) -> bool:
        """Whether other processes hear what this one publishes."""
        return False

    def on(self, kind: str, handler: Handler) -> None:
        self._handlers.setdefault(kind, []).append(handler)

    def publish(self, kind: str, **fields: Any) -> None:
        """Apply a change here at once (and, when shared, announce it to the other processes)."""
        self._deliver({"kind": kind, "origin": self.origin, **fields})

    def publish_soon(self, kind: str, **fields: Any) -> None:
        """``publish`` without waiting for Redis (from the event loop, on a request's path)."""
        self.publish(kind, **fields)

    def _deliver(self, message: dict[str, Any]) -> None:
        for handler in self._handlers.get(str(message.get("kind")), ()):
            try:
                handler(message)
            except Exception:  # one bad handler or message must not stop the others
                log.exception("applying a broadcast change failed: %s", message)

    async def start(self) -> None:
        """Start listening to the other processes (nothing to do in one process)."""

    async def stop(self) -> None:
        """Stop listening."""


class RedisBroadcast(Broadcast):
    """Changes published on a Redis channel that every API process listens to."""

    def __init__(self, url: str) -> None:
        super().__init__()
        import redis

        self.url = url
        # Publishing is rare (an admin's change, a breaker's transition) and may happen on any thread: a
        # blocking client with its own thread-safe pool, short timeouts so a Redis outage never hangs a request.
        self._publisher = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._listener: asyncio.Task | None = None
        self.subscribed = asyncio.Event()

    @property
    def shared(self) -> bool:
        return True

    def publish(self, kind: str, **fields: Any) -> None:
        """Apply here and publish before returning: an admin's change (a revoked key) is out before its answer
        is, so the client's next request, wherever it lands, finds it applied."""
        message = {"kind": kind, "origin": self.origin, **fields}
        self._deliver(message)
        self._send(message)

    def publish_soon(self, kind: str, **fields: Any) -> None:
        message = {"kind": kind, "origin": self.origin, **fields}
        self._deliver(message)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._send(message)
            return
        loop.run_in_executor(None, self._send, message)  # a breaker's transition never blocks the event loop

    def _send(self, message: dict[str, Any]) -> None:
        import redis

        try:
            self._publisher.publish(CHANNEL, json.dumps(message))
        except redis.RedisError as exc:
            log.error(
                "could not publish a %s change to the other API processes (%s): they apply it when their caches expire",
                message["kind"],
                exc,
            )

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="outrider-broadcast")
        with contextlib.suppress(TimeoutError):  # Redis down: serve anyway, the listener keeps retrying
            await asyncio.wait_for(self.subscribed.wait(), 5)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        self._publisher.close()

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        first = True
        while True:
            client = aioredis.Redis.from_url(self.url, socket_connect_timeout=2)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    if not first:  # changes published while this process was away were missed
                        self._deliver({"kind": RESYNC, "origin": self.origin})
                    first = False
                    self.subscribed.set()
                    async for message in pubsub.listen():
                        self._received(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed.clear()
                log.warning("lost the broadcast channel on %s (%s); reconnecting", self.url, exc)
                await asyncio.sleep(1)
            finally:
                await client.aclose()

    def _received(self, message: dict[str, Any]) -> None:
        if message.get("type") != "message":
            return
        try:
            change = json.loads(message["data"])
        except (TypeError, ValueError):
            log.warning("ignored a malformed broadcast message")
            return
        if isinstance(change, dict) and change.get("origin") != self.origin:
            self._deliver(change)


def broadcast_for(redis_url: str | None) -> Broadcast:
    return RedisBroadcast(redis_url) if redis_url else Broadcast()
