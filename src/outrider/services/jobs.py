"""Jobs as a use case: queue one, read it, list them, ask one to stop. Running them is ``jobs/worker.py``'s.

Features build on this: generation (``services/data_generation.py``) and training queue their kinds here
(each kind's name lives with its service); ``build_services`` registers their handlers (``jobs/``) on
``handlers``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from outrider.core.errors import NotFound
from outrider.jobs.registry import JobHandlers
from outrider.storage.db import Database
from outrider.storage.queries import jobs as q
from outrider.storage.records import Job


class LocalWorker(Protocol):
    """A worker running in this process (``jobs/worker.py``), told at once of new jobs and stop requests."""

    def wake(self) -> None: ...

    def flag_stop(self, job_id: str) -> None: ...

    def liveness(self) -> str | None:
        """None while it runs jobs, else why not (``/health/ready`` reports it)."""


class JobService:
    def __init__(self, db: Database, handlers: JobHandlers | None = None) -> None:
        self.db = db
        self.handlers = handlers or JobHandlers()
        self._local_workers: list[LocalWorker] = []

    def attach(self, worker: LocalWorker) -> None:
        self._local_workers.append(worker)

    def detach(self, worker: LocalWorker) -> None:
        if worker in self._local_workers:
            self._local_workers.remove(worker)

    @property
    def local_workers(self) -> list[LocalWorker]:
        return list(self._local_workers)

    async def submit(self, account_id: str, kind: str, payload: dict[str, Any], *, prefix: str = "job") -> Job:
        """Queue a job (durably: a restart does not lose it) and wake this process's worker, if any."""

        def write() -> Job:
            with self.db.session() as s:
                return q.insert_job(s, account_id=account_id, kind=kind, payload=payload, prefix=prefix)

        job = await asyncio.to_thread(write)
        for worker in self._local_workers:
            worker.wake()
        return job

    async def get(self, account_id: str, job_id: str, *, kind: str | None = None) -> Job:
        def read() -> Job | None:
            with self.db.session() as s:
                return q.get_job(s, job_id, account_id=account_id)

        job = await asyncio.to_thread(read)
        if job is None or (kind is not None and job.kind != kind):
            raise NotFound(f"job '{job_id}' not found")
        return job

    async def list(
        self, account_id: str, *, kind: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[Job], int]:
        def read() -> tuple[list[Job], int]:
            with self.db.session() as s:
                return q.list_jobs(s, account_id=account_id, kind=kind, limit=limit, offset=offset)

        return await asyncio.to_thread(read)

    async def stop(self, account_id: str, job_id: str, *, kind: str | None = None) -> Job:
        """Raise the job's stop flag (its handler sees it at the next heartbeat); a queued job stops at once."""
        await self.get(account_id, job_id, kind=kind)

        def write() -> Job | None:
            with self.db.session() as s:
                return q.request_stop(s, job_id, account_id=account_id)

        job = await asyncio.to_thread(write)
        if job is None:
            raise NotFound(f"job '{job_id}' not found")
        for worker in self._local_workers:  # running here: no need to wait for the next heartbeat
            worker.flag_stop(job_id)
        return job
