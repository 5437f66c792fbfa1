"""What operators ask of a running process: its metrics (``GET /metrics``) and whether it is ready to
serve (``GET /health/ready``). See docs/operations.md.

A scrape reads the store once (two aggregate queries: jobs by kind and state, credit reserved), reads the
loaded models' queues and the upstream circuit breakers from memory, sets those gauges and renders the
registry, with no ``await`` between setting and rendering, so concurrent scrapes never see each other's
half-set gauges. Requests themselves never query the database for metrics.

Readiness checks, each bounded by ``OUTRIDER_READY_TIMEOUT_S``: the database answers a query, its
migrations are at the head revision this code ships, and, with the embedded worker on, that worker runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, TypeVar

from outrider.backends.registry import ModelRegistry
from outrider.config import Settings
from outrider.observability.metrics import Metrics, QueueDepth, StoreSnapshot, UpstreamState
from outrider.services.jobs import JobService
from outrider.storage.db import Database
from outrider.storage.queries import billing as billing_q
from outrider.storage.queries import jobs as jobs_q

log = logging.getLogger(__name__)
T = TypeVar("T")


CheckStatus = Literal["ok", "failing", "skipped"]


@dataclass(frozen=True)
class Check:
    name: str  # "database", "migrations" or "worker"
    status: CheckStatus
    detail: str | None = None


@dataclass(frozen=True)
class Readiness:
    checks: tuple[Check, ...]

    @property
    def ready(self) -> bool:
        return not self.failing

    @property
    def failing(self) -> list[str]:
        return [check.name for check in self.checks if check.status == "failing"]


class MonitoringService:
    def __init__(
        self, settings: Settings, metrics: Metrics, db: Database, registry: ModelRegistry, jobs: JobService
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.db = db
        self.registry = registry
        self.jobs = jobs
        self._running: dict[str, asyncio.Future] = {}  # the thread of each kind of store work, while it runs

    # -- metrics ------------------------------------------------------------------------------------------------
    async def scrape(self) -> bytes:
        try:
            snapshot = await self._bounded("store", self._read_store)
        except Exception as exc:
            log.warning("metrics: the store could not be read: %s", _describe(exc))
            snapshot = None
        self.metrics.set_store(snapshot, self.jobs.handlers.kinds())
        self.metrics.set_queue_depths(QueueDepth(*item) for item in self.registry.queue_depths())
        self.metrics.set_upstreams(self._upstream_states())
        return self.metrics.render()

    def _read_store(self) -> StoreSnapshot:
        with self.db.session() as s:
            jobs = jobs_q.count_by_kind_and_status(s)
            return StoreSnapshot(jobs=jobs, credits_reserved_micro_usd=billing_q.total_reserved(s))

    def _upstream_states(self) -> Iterator[UpstreamState]:
        for spec in self.registry.specs():
            monitor = spec.monitor
            if monitor is None:
                continue
            failures = monitor.consecutive_failures
            yield UpstreamState(spec.id, monitor.is_available() and failures == 0, monitor.state, failures)

    # -- readiness ----------------------------------------------------------------------------------------------
    async def readiness(self) -> Readiness:
        database = await self._check("database", self._check_database)
        # Without a database the revision cannot be read: one failing part is named, not two.
        if database.status == "ok":
            migrations = await self._check("migrations", self._check_migrations)
        else:
            migrations = Check("migrations", "skipped", "not checked: the database does not answer")
        return Readiness((database, migrations, self._check_worker()))

    async def _check(self, name: str, probe: Callable[[], str | None]) -> Check:
        try:
            problem = await self._bounded(name, probe)
        except TimeoutError:
            return Check(name, "failing", f"no answer within {self.settings.ready_timeout_s:g} s")
        except Exception as exc:
            log.warning("readiness: %s check failed: %s", name, _describe(exc))
            return Check(name, "failing", f"query failed: {type(exc).__name__}")
        return Check(name, "ok" if problem is None else "failing", problem)

    def _check_database(self) -> str | None:
        self.db.ping()
        return None

    def _check_migrations(self) -> str | None:
        current, head = self.db.migration_revisions()
        if current != head:
            return f"the database is at revision {current or 'none'}, this version needs {head}"
        return None

    def _check_worker(self) -> Check:
        if not self.settings.embedded_worker:
            return Check("worker", "skipped", "OUTRIDER_EMBEDDED_WORKER is off: jobs run in outrider worker processes")
        workers = self.jobs.local_workers
        if not workers:
            return Check("worker", "failing", "the embedded worker is not running")
        problems = [problem for problem in (w.liveness() for w in workers) if problem]
        return Check("worker", "failing" if problems else "ok", "; ".join(problems) or None)

    async def _bounded(self, name: str, work: Callable[[], T]) -> T:
        """Run blocking store work in a thread, waiting at most ``ready_timeout_s``. One thread per kind of work
        at a time: callers that arrive while it runs (concurrent probes, a probe after a timed-out one on a
        database that hangs) wait for that one instead of piling up threads."""
        running = self._running.get(name)
        if running is None or running.done():
            running = asyncio.ensure_future(asyncio.to_thread(work))
            running.add_done_callback(_retrieve)  # an error nobody awaited any more is not reported as lost
            self._running[name] = running
        return await asyncio.wait_for(asyncio.shield(running), self.settings.ready_timeout_s)


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
