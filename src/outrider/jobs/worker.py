"""The job worker: claims queued jobs from the database and runs their handlers as asyncio tasks.

Embedded in ``outrider serve`` (``OUTRIDER_EMBEDDED_WORKER``, on by default) and runnable alone as
``outrider worker``; any number of workers may share one database. A claim is a compare-and-set on
the job's status (``storage/queries/jobs.claim_next``), so no two workers run the same job.

Each running job is heartbeated every ``job_heartbeat_s``; the heartbeat also reads the job's stop flag.
A job left ``running`` by a worker that died is marked ``failed`` with the reason, and its kind's
``recover`` hook runs: at once when that worker ran on this host and its process is gone, otherwise
once its heartbeat is older than ``job_stale_after_s``. Workers check at start-up and on every tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from datetime import timedelta
from typing import Any, Protocol

from outrider.config import Settings
from outrider.core.errors import OutriderError
from outrider.jobs.registry import Periodic, StopRequested
from outrider.services.jobs import JobService
from outrider.storage.db import Database
from outrider.storage.queries import jobs as q
from outrider.storage.queries import now
from outrider.storage.records import Job

log = logging.getLogger(__name__)

HOST = socket.gethostname()


def new_worker_id() -> str:
    return f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}"


def _process_gone(worker_id: str | None) -> bool:
    """True when ``worker_id`` names a process on this host that no longer runs (or is a zombie). Hosts are
    told apart by hostname: containers sharing one (and one database) should rely on heartbeats instead,
    so give them distinct hostnames."""
    host, _, rest = (worker_id or "").partition(":")
    pid_text = rest.partition(":")[0]
    if host != HOST or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a killed child its parent has not reaped yet still answers signals
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class WorkerServices(Protocol):
    """What a worker uses of the application (``Services`` has it): the jobs, their handlers, the database."""

    settings: Settings
    db: Database
    jobs: JobService


class RunningJob:
    """A running job as its handler sees it (``jobs.registry.JobContext``): the job, progress reporting,
    results and the stop flag."""

    def __init__(self, worker: Worker, job: Job) -> None:
        self.worker = worker
        self.job = job
        self._progress: dict[str, Any] = dict(job.progress)
        self._stop = job.stop_requested

    @property
    def payload(self) -> dict[str, Any]:
        return self.job.payload

    def should_stop(self) -> bool:
        """True once someone asked this job to stop (refreshed at every heartbeat and progress write)."""
        return self._stop

    async def progress(self, **fields: Any) -> None:
        """Merge ``fields`` into the job's progress and write it (also a heartbeat)."""
        self._progress.update(fields)
        await self.worker.beat(self, dict(self._progress))

    async def set_result(self, **fields: Any) -> None:
        """Merge ``fields`` into the job's result now (visible while it runs)."""

        def write() -> None:
            with self.worker.db.session() as s:
                q.set_result(s, self.job.id, fields)

        await asyncio.to_thread(write)


class Worker:
    def __init__(self, services: WorkerServices, *, worker_id: str | None = None) -> None:
        settings = services.settings
        self.db = services.db
        self.jobs = services.jobs
        self.handlers = services.jobs.handlers
        self.worker_id = worker_id or new_worker_id()
        self.concurrency = settings.worker_concurrency
        self.poll_s = settings.worker_poll_interval_s
        self.heartbeat_s = settings.job_heartbeat_s
        self.stale_after = timedelta(seconds=settings.job_stale_after_s)
        self._running: dict[str, tuple[asyncio.Task, RunningJob]] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._stopping = False
        self._last_tick = time.monotonic()  # the claim loop's last turn: readiness reads it

    # -- life cycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.recover_abandoned()
        self.jobs.attach(self)
        self._last_tick = time.monotonic()
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="claim"),
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            *(asyncio.create_task(self._periodic_loop(p), name=p.name) for p in self.handlers.periodic()),
        ]
        log.info("job worker %s started (kinds: %s)", self.worker_id, ", ".join(self.handlers.kinds()))

    async def run_forever(self) -> None:
        await self.start()
        try:
            await asyncio.gather(*self._tasks)
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Stop claiming; jobs still running are cancelled and marked failed (their handlers clean up)."""
        self._stopping = True
        self.jobs.detach(self)
        for task in self._tasks:
            task.cancel()
        # the claim loop may still be putting an unstarted job back in the queue
        await asyncio.gather(*self._tasks, return_exceptions=True)
        running = list(self._running.values())
        for task, _ in running:
            task.cancel()
        for task, _ in running:
            with contextlib.suppress(BaseException):
                await task

    def liveness(self) -> str | None:
        """None while the worker claims jobs, else why not: stopped, a loop that ended, or a claim loop that
        has not turned for ``job_stale_after_s`` (stuck, e.g. on a database that does not answer)."""
        if self._stopping or not self._tasks:
            return "the worker is not running"
        for task in self._tasks:
            if task.done():
                problem = None if task.cancelled() else task.exception()
                return f"the worker's {task.get_name()} loop ended" + (f": {problem!r}" if problem else "")
        idle_s = time.monotonic() - self._last_tick
        if idle_s > self.stale_after.total_seconds():
            return f"the worker's claim loop has not run for {idle_s:.0f} s"
        return None

    def flag_stop(self, job_id: str) -> None:
        """The job's stop flag was raised in this process: tell its handler now."""
        running = self._running.get(job_id)
        if running is not None:
            running[1]._stop = True

    def wake(self) -> None:
        """A job was queued in this process: claim it without waiting for the next poll."""
        self._wake.set()

    # -- claiming and running ----------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        while not self._stopping:
            self._last_tick = time.monotonic()
            job = None
            if len(self._running) < self.concurrency:
                # The claim runs in a thread that a stop cannot interrupt: a job it claims while the worker
                # stops goes back to the queue, or it would stay "running" with nobody running it.
                claim = asyncio.ensure_future(asyncio.to_thread(self._claim))
                try:
                    job = await asyncio.shield(claim)
                except asyncio.CancelledError:
                    with contextlib.suppress(Exception):
                        unstarted = await claim
                        if unstarted is not None:
                            await asyncio.to_thread(self._release, unstarted)
                    raise
                except Exception:
                    log.exception("claiming a job failed")
            if job is not None:
                self._launch(job)
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)

    def _claim(self) -> Job | None:
        with self.db.session() as s:
            return q.claim_next(s, self.handlers.kinds(), self.worker_id)

    def _release(self, job: Job) -> None:
        with self.db.session() as s:
            if q.release_claim(s, job.id, self.worker_id):
                log.info("worker %s stopped before starting job %s: back in the queue", self.worker_id, job.id)

    def _launch(self, job: Job) -> None:
        ctx = RunningJob(self, job)
        task = asyncio.create_task(self._run(ctx), name=f"job-{job.id}")
        self._running[job.id] = (task, ctx)
        log.info("worker %s runs %s job %s", self.worker_id, job.kind, job.id)

    async def _run(self, ctx: RunningJob) -> str:
        """Run a claimed job's handler and record how it ended; returns the final status."""
        job = ctx.job
        kind = self.handlers.get(job.kind)
        status, error, result = "complete", None, None
        try:
            if kind is None:
                raise RuntimeError(f"no handler for job kind '{job.kind}'")
            result = await kind.run(ctx)
            if ctx.should_stop():
                status = "stopped"
        except StopRequested:
            status = "stopped"
        except asyncio.CancelledError:
            status, error = "failed", "interrupted: the worker shut down while the job was running"
        except OutriderError as exc:
            status, error = "failed", exc.message
        except Exception as exc:
            log.exception("job %s failed", job.id)
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            self._running.pop(job.id, None)
            self._wake.set()
        await asyncio.shield(asyncio.to_thread(self._finish, job.id, status, error, result))
        return status

    def _finish(self, job_id: str, status: str, error: str | None, result: dict | None) -> None:
        with self.db.session() as s:
            q.finish_job(s, job_id, status=status, worker_id=self.worker_id, error=error, result=result or None)
        log.info("job %s %s%s", job_id, status, f": {error}" if error else "")

    async def _periodic_loop(self, periodic: Periodic) -> None:
        """Run one periodic task until the worker stops; a turn that fails is logged and tried again later."""
        while not self._stopping:
            more = False
            try:
                more = await periodic.tick()
            except Exception:
                log.exception("periodic task %s failed", periodic.name)
            if not more:
                await asyncio.sleep(periodic.interval_s)

    # -- heartbeats, stop flags and abandoned jobs -------------------------------------------------------
    async def beat(self, ctx: RunningJob, progress: dict[str, Any] | None = None) -> None:
        def write() -> Job | None:
            with self.db.session() as s:
                return q.heartbeat(s, ctx.job.id, self.worker_id, progress)

        found = await asyncio.to_thread(write)
        if found is not None:
            ctx._stop = found.stop_requested

    async def _heartbeat_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.heartbeat_s)
            for _, ctx in list(self._running.values()):
                try:
                    await self.beat(ctx)
                except Exception:
                    log.exception("heartbeat of job %s failed", ctx.job.id)
            try:
                await self.recover_abandoned()
            except Exception:
                log.exception("recovering abandoned jobs failed")

    async def recover_abandoned(self) -> list[Job]:
        """Fail the jobs whose worker is gone and run their kinds' recovery hooks."""
        return await asyncio.to_thread(self._recover_abandoned)

    def _recover_abandoned(self) -> list[Job]:
        with self.db.session() as s:
            running = q.running_jobs(s)
        cutoff = now() - self.stale_after
        failed = []
        for job in running:
            if job.worker_id == self.worker_id:
                continue
            if _process_gone(job.worker_id):
                reason = f"the worker running this job ({job.worker_id}) died before it finished"
            elif job.heartbeat_at is None or job.heartbeat_at < cutoff:
                reason = f"the worker running this job ({job.worker_id}) stopped sending heartbeats"
            else:
                continue
            with self.db.session() as s:
                marked = q.fail_abandoned(s, job.id, seen_heartbeat=job.heartbeat_at, reason=reason)
            if marked is None:
                continue
            log.warning("job %s failed: %s", job.id, reason)
            failed.append(marked)
            self.run_recovery(marked)
        return failed

    def run_recovery(self, failed: Job) -> None:
        """Run the recovery hook of a job failed because what ran it died (e.g. close a partial dataset)."""
        kind = self.handlers.get(failed.kind)
        if kind is not None and kind.recover is not None:
            try:
                kind.recover(failed)
            except Exception:
                log.exception("recovery of abandoned job %s failed", failed.id)


async def run_claimed_job(
    services: WorkerServices, job: Job, worker_id: str, *, where: dict[str, Any] | None = None
) -> str:
    """Run one job already claimed by ``worker_id`` to its end, heartbeating it meanwhile: what a Ray task
    does on its node (``jobs/ray_backend.py``), with the embedded worker's code. ``where`` (the node and
    process) is written to the job's progress first, so operators see where it runs."""
    worker = Worker(services, worker_id=worker_id)
    ctx = RunningJob(worker, job)
    if where:
        await ctx.progress(ray=where)

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(worker.heartbeat_s)
            try:
                await worker.beat(ctx)
            except Exception:
                log.exception("heartbeat of job %s failed", job.id)

    beating = asyncio.create_task(heartbeat())
    try:
        return await worker._run(ctx)
    finally:
        beating.cancel()
