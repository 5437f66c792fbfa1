"""Job kinds and their handlers: each feature registers how to run its kind (and how to clean up after
one whose worker died) on the ``JobHandlers`` that ``build_services`` creates.

A handler is ``async def run(ctx: JobContext) -> dict | None``: it reports progress with
``await ctx.progress(...)``, checks ``ctx.should_stop()`` between steps, and returns fields to merge
into the job's ``result``. Raising fails the job with the exception's message. Heavy work belongs in a
thread or a subprocess (the worker's event loop is the server's when embedded).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from outrider.app_state import Services
    from outrider.jobs.worker import JobContext
    from outrider.storage.records import Job

Run = Callable[["JobContext"], Awaitable[dict[str, Any] | None]]
Recover = Callable[["Services", "Job"], None]


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

    def register(self, name: str, run: Run, *, recover: Recover | None = None) -> None:
        self._kinds[name] = JobKind(name, run, recover)

    def get(self, name: str) -> JobKind | None:
        return self._kinds.get(name)

    def kinds(self) -> list[str]:
        return list(self._kinds)
