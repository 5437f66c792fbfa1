"""Health of an upstream model: a cached probe behind a circuit breaker.

    closed     calls and probes go through; consecutive failures (of real calls or probes) are counted
    open       after ``failure_threshold`` consecutive failures: the model is ``unavailable`` and calls fail
               at once, without contacting the upstream, for ``cooldown_s``
    half-open  after the cool-down: calls and probes go through again; the next success closes the
               circuit, the next failure opens it for another cool-down

A probe result is cached for ``ttl_s``; a successful real call counts as a fresh successful probe.

Several API processes share each breaker's transitions (``share``): when one opens it (with when, how many
failures and the last error) or closes it, ``on_change`` announces it (``UpstreamProviders.share_breakers``
publishes it over Redis) and the other processes' monitors ``apply_shared`` it, so one process's failures
spare the others their own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from outrider.backends.base import Health

CircuitState = Literal["closed", "open", "half_open"]
Probe = Callable[[], Awaitable[str | None]]  # None when healthy, else why not


class UpstreamMonitor:
    """Implements ``HealthMonitor`` for one upstream model. Used from the event loop only."""

    def __init__(
        self,
        model_id: str,
        probe: Probe,
        *,
        ttl_s: float,
        failure_threshold: int,
        cooldown_s: float,
        unusable: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model_id = model_id
        self.ttl_s = ttl_s
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.unusable = unusable  # a configuration problem (e.g. its key variable is unset): never available
        self._probe = probe
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._last_error: str | None = None
        self._cached: tuple[float, Health, str | None] | None = None
        self._probing: asyncio.Future[tuple[Health, str | None]] | None = None
        # Told each transition this process made (open, closed), to share with the other API processes.
        self.on_change: Callable[[dict[str, Any]], None] | None = None

    # -- the breaker ---------------------------------------------------------------------------------------
    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at < self.cooldown_s:
            return "open"
        return "half_open"

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def is_available(self) -> bool:
        """Whether a call may be sent now (closed or half-open circuit, usable configuration)."""
        return self.unusable is None and self.state != "open"

    def unavailable_reason(self) -> str:
        if self.unusable is not None:
            return self.unusable
        remaining = max(0.0, self.cooldown_s - (self._clock() - (self._opened_at or 0.0)))
        return (
            f"upstream model '{self.model_id}' failed {self._failures} times in a row (last: {self._last_error}); "
            f"not tried again for {remaining:.0f} s"
        )

    def report_success(self) -> None:
        was_open = self._opened_at is not None
        self._failures = 0
        self._opened_at = None
        self._last_error = None
        self._cached = (self._clock(), "ready", None)
        if was_open and self.on_change is not None:
            self.on_change({"state": "closed"})

    def report_failure(self, reason: str) -> None:
        was_half_open = self.state == "half_open"
        self._failures += 1
        self._last_error = reason
        self._cached = None  # the next health check probes again
        if was_half_open or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
            if self.on_change is not None:
                # Wall-clock time travels between processes; each keeps its own monotonic clock.
                opened_epoch = time.time() - (self._clock() - self._opened_at)
                self.on_change(
                    {"state": "open", "opened_epoch": opened_epoch, "failures": self._failures, "error": reason}
                )

    def apply_shared(self, change: dict[str, Any]) -> None:
        """Take a transition another process announced (``on_change``'s argument there)."""
        if change.get("state") == "closed":
            self._failures, self._opened_at, self._last_error = 0, None, None
        elif change.get("state") == "open":
            elapsed = max(0.0, time.time() - float(change["opened_epoch"]))
            self._opened_at = self._clock() - elapsed
            self._failures = int(change.get("failures") or self.failure_threshold)
            self._last_error = str(change.get("error") or "failed in another API process")
            self._cached = None

    # -- health --------------------------------------------------------------------------------------------
    async def health(self) -> tuple[Health, str | None]:
        if not self.is_available():
            return "unavailable", self.unavailable_reason()
        cached = self._cached
        if cached is not None and self.state == "closed" and self._clock() - cached[0] < self.ttl_s:
            return cached[1], cached[2]
        if self._probing is None:  # concurrent health checks share one probe
            self._probing = asyncio.ensure_future(self._run_probe())
            self._probing.add_done_callback(self._probe_done)
        return await asyncio.shield(self._probing)

    def _probe_done(self, _: asyncio.Future) -> None:
        self._probing = None

    async def _run_probe(self) -> tuple[Health, str | None]:
        try:
            problem = await self._probe()
        except Exception as exc:  # a probe must never break a health check
            problem = f"probe failed: {type(exc).__name__}: {exc}"
        if problem is None:
            self.report_success()
            return "ready", None
        self.report_failure(problem)
        if not self.is_available():
            return "unavailable", self.unavailable_reason()
        return "unavailable", problem
