"""Job kinds and their handlers: each feature registers how to run its kind (and how to clean up after
one whose worker died) on the ``JobHandlers`` that ``build_services`` creates.

A handler is ``async def run(ctx: JobContext) -> dict | None``: it reports progress with
``await ctx.progress(...)``, checks ``ctx.should_stop()`` between steps, and returns fields to merge
into the job's ``result``. Raising fails the job with the exception's message; raising ``StopRequested``
ends it ``stopped``. Heavy work belongs in a thread or a subprocess (the worker's event loop is the
server's when embedded). What else a handler uses (services, settings) it is given when it is registered,
not through the context: ``build_services`` builds each kind's dependencies.

This module is the contract between the features and the worker: it imports nothing of theirs, so both
the services that queue jobs and the worker that runs them can depend on it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from outrider.storage.records import Job


class StopRequested(Exception):
    """A handler may raise this to end early because its job was asked to stop."""


class JobContext(Protocol):
    """What a handler sees of the worker running its job."""

    @property
    def job(self) -> Job: ...

    @property
    def payload(self) -> dict[str, Any]: ...

    def should_stop(self) -> bool:
        """True once someone asked this job to stop (refreshed at every heartbeat and progress write)."""
        ...

    async def progress(self, **fields: Any) -> None:
        """Merge ``fields`` into the job's progress and write it (also a heartbeat)."""
        ...

    async def set_result(self, **fields: Any) -> None:
        """Merge ``fields`` into the job's result now (visible while it runs)."""
        ...


Run = Callable[[JobContext], Awaitable[dict[str, Any] | None]]
Recover = Callable[["Job"], None]
# A periodic task of the worker (the judge queue, the retrain policies): one turn of work; it returns True when
# it left work undone (a full batch), and is then run again at once instead of after its interval.
Tick = Callable[[], Awaitable[bool]]


@dataclass(frozen=True)
class Periodic:
    name: str
    interval_s: float
    tick: Tick


@dataclass(frozen=True)
class JobKind:
    name: str
    run: Run
    # Called (in a thread) once a job of this kind was found abandoned by a dead worker and marked
    # failed: e.g. close the dataset version it was writing as a readable ``partial`` one.
    recover: Recover | None = None


class JobHandlers:
    def __init__(self) -> None:
        self._kinds: dict[str, JobKind] = {}
        self._periodic: dict[str, Periodic] = {}

    def register(self, name: str, run: Run, *, recover: Recover | None = None) -> None:
        self._kinds[name] = JobKind(name, run, recover)

    def get(self, name: str) -> JobKind | None:
        return self._kinds.get(name)

    def kinds(self) -> list[str]:
        return list(self._kinds)

    def every(self, name: str, interval_s: float, tick: Tick) -> None:
        """Have every worker run ``tick`` each ``interval_s`` seconds (work shared by workers must be claimed
        by compare-and-set, as jobs are)."""
        self._periodic[name] = Periodic(name, interval_s, tick)

    def periodic(self) -> list[Periodic]:
        return list(self._periodic.values())
