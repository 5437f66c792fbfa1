"""The job worker against a real database: atomic claims, progress, stop, failures, abandoned jobs, restarts."""

import asyncio
import sqlite3
import subprocess
import sys
from datetime import timedelta

import pytest

from outrider.app_state import build_services
from outrider.jobs.worker import HOST, Worker
from outrider.storage.queries import jobs as q
from outrider.storage.queries import now
from outrider.storage.tables import JobRow
from tests.conftest import make_settings
from tests.databases import BACKENDS, database_url

FAST = {"job_heartbeat_s": 0.1, "worker_poll_interval_s": 0.05, "job_stale_after_s": 2.0, "embedded_worker": False}


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path


@pytest.fixture(params=BACKENDS)
def store_url(request, data_dir) -> str:
    """Each test runs on SQLite and on PostgreSQL (a fresh database on the session's throwaway server)."""
    return database_url(request, data_dir)


def build(data_dir, base_models_dir, url):
    return build_services(make_settings(data_dir, base_models_dir, database_url=url, **FAST))


@pytest.fixture
def svc(data_dir, base_models_dir, store_url):
    services = build(data_dir, base_models_dir, store_url)
    yield services
    services.close()


def account(svc) -> str:
    return svc.bootstrap.account.id


async def wait_for(svc, job_id, statuses, timeout=20.0, owner=None):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        job = await svc.jobs.get(owner or account(svc), job_id)
        if job.status in statuses:
            return job
        assert asyncio.get_running_loop().time() < deadline, f"job stayed {job.status}"
        await asyncio.sleep(0.05)


async def test_two_workers_never_run_the_same_job(svc):
    ran: list[str] = []

    async def count(ctx):
        ran.append(ctx.job.id)
        await ctx.progress(step=1)
        await asyncio.sleep(0.01)
        return {"worker": ctx.worker.worker_id}

    svc.jobs.handlers.register("count", count)
    jobs = [await svc.jobs.submit(account(svc), "count", {"n": i}) for i in range(30)]
    workers = [Worker(svc), Worker(svc)]
    for worker in workers:
        await worker.start()
    try:
        done = [await wait_for(svc, job.id, ("complete",)) for job in jobs]
    finally:
        for worker in workers:
            await worker.stop()
    assert sorted(ran) == sorted(job.id for job in jobs)  # every job once, none twice
    assert all(job.progress == {"step": 1} and job.result["worker"] == job.worker_id for job in done)
    assert {job.worker_id for job in done} <= {w.worker_id for w in workers}


async def test_a_failing_handler_fails_its_job_with_the_reason(svc):
    async def boom(ctx):
        raise ValueError("the teacher said no")

    svc.jobs.handlers.register("boom", boom)
    job = await svc.jobs.submit(account(svc), "boom", {})
    worker = Worker(svc)
    await worker.start()
    try:
        failed = await wait_for(svc, job.id, ("failed",))
    finally:
        await worker.stop()
    assert failed.error == "ValueError: the teacher said no" and failed.finished_at is not None


async def test_stop_reaches_the_handler_in_process_and_through_the_database(svc):
    async def patient(ctx):
        while not ctx.should_stop():
            await asyncio.sleep(0.02)
        return {"stopped_cleanly": True}

    svc.jobs.handlers.register("patient", patient)
    worker = Worker(svc)
    await worker.start()
    try:
        here = await svc.jobs.submit(account(svc), "patient", {})
        await wait_for(svc, here.id, ("running",))
        await svc.jobs.stop(account(svc), here.id)  # this process: the handler is told at once
        stopped = await wait_for(svc, here.id, ("stopped",), timeout=2)
        assert stopped.result == {"stopped_cleanly": True}

        elsewhere = await svc.jobs.submit(account(svc), "patient", {})
        await wait_for(svc, elsewhere.id, ("running",))
        with svc.db.session() as s:  # what another process's stop request does: only the flag in the database
            q.request_stop(s, elsewhere.id, account_id=account(svc))
        await wait_for(svc, elsewhere.id, ("stopped",), timeout=5)  # seen at the next heartbeat
    finally:
        await worker.stop()
    queued = await svc.jobs.submit(account(svc), "patient", {})
    assert (await svc.jobs.stop(account(svc), queued.id)).status == "stopped"  # never started


async def test_jobs_of_dead_or_silent_workers_are_failed_and_recovered(svc):
    recovered: list[str] = []
    svc.jobs.handlers.register("slow", lambda ctx: asyncio.sleep(60), recover=lambda job: recovered.append(job.id))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)

    def running(worker_id, heartbeat_age_s):
        with svc.db.session() as s:
            created = q.insert_job(s, account_id=account(svc), kind="slow", payload={})
        with svc.db.session() as s:
            claimed = q.claim_next(s, ["slow"], worker_id)
            assert claimed.id == created.id
            s.get(JobRow, created.id).heartbeat_at = now() - timedelta(seconds=heartbeat_age_s)
        return created.id

    died_here = running(f"{HOST}:{dead_pid}:gone", 0)
    silent = running("another-host:4242:abcd", 600)
    alive = running("another-host:4243:abcd", 0)
    worker = Worker(svc)
    await worker.start()  # recovery runs before the first claim
    try:
        first = await svc.jobs.get(account(svc), died_here)
        assert first.status == "failed" and "died" in first.error
        second = await svc.jobs.get(account(svc), silent)
        assert second.status == "failed" and "heartbeats" in second.error
        assert (await svc.jobs.get(account(svc), alive)).status == "running"
        assert sorted(recovered) == sorted([died_here, silent])
    finally:
        await worker.stop()


async def test_queued_jobs_survive_a_restart_and_a_shutdown_fails_running_ones(data_dir, base_models_dir, store_url):
    first = build(data_dir, base_models_dir, store_url)
    owner = account(first)
    queued = await first.jobs.submit(owner, "echo", {"value": 7})
    first.close()  # no worker ever ran: the job is only in the database

    async def echo(ctx):
        return {"value": ctx.payload["value"]}

    started = asyncio.Event()

    async def forever(ctx):
        started.set()
        await asyncio.sleep(600)

    second = build(data_dir, base_models_dir, store_url)
    second.jobs.handlers.register("echo", echo)
    second.jobs.handlers.register("forever", forever)
    worker = Worker(second)
    await worker.start()
    try:
        done = await wait_for(second, queued.id, ("complete",), owner=owner)
        assert done.result == {"value": 7}
        endless = await second.jobs.submit(owner, "forever", {})
        await asyncio.wait_for(started.wait(), 20)  # its handler runs (not only claimed in the database)
    finally:
        await worker.stop()
    interrupted = await second.jobs.get(owner, endless.id)
    assert interrupted.status == "failed" and interrupted.error.startswith("interrupted")
    second.close()


async def test_a_job_claimed_while_the_worker_stops_goes_back_to_the_queue(svc):
    """The claim runs in a thread that a stop cannot interrupt: a job it takes as the worker stops is put
    back in the queue instead of staying "running" with nobody running it."""
    import threading

    async def noop(ctx):
        return {}

    svc.jobs.handlers.register("noop", noop)
    worker = Worker(svc)
    entered, go_on = threading.Event(), threading.Event()
    real_claim = worker._claim

    def slow_claim():
        entered.set()
        go_on.wait(20)
        return real_claim()

    worker._claim = slow_claim
    job = await svc.jobs.submit(account(svc), "noop", {})
    await worker.start()
    await asyncio.to_thread(entered.wait, 20)
    stopping = asyncio.create_task(worker.stop())
    await asyncio.sleep(0.1)  # the stop has cancelled the claim loop while its claim is in the thread
    go_on.set()
    await stopping
    found = await svc.jobs.get(account(svc), job.id)
    assert found.status == "queued" and found.started_at is None


async def test_liveness_names_a_stopped_worker_and_a_claim_loop_stuck_on_the_database(data_dir, base_models_dir):
    svc = build(data_dir, base_models_dir, None)  # SQLite: the blocker below holds its write lock

    async def noop(ctx):
        return {}

    svc.jobs.handlers.register("noop", noop)
    await svc.jobs.submit(account(svc), "noop", {})
    worker = Worker(svc)
    assert worker.liveness() == "the worker is not running"
    # Another connection holds SQLite's write lock: the worker's claim of that job waits for it (busy timeout).
    blocker = sqlite3.connect(data_dir / "outrider.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        await worker.start()
        assert worker.liveness() is None
        deadline = asyncio.get_running_loop().time() + 8
        while (problem := worker.liveness()) is None:
            assert asyncio.get_running_loop().time() < deadline, "the stuck claim loop was never reported"
            await asyncio.sleep(0.1)
        assert problem.startswith("the worker's claim loop has not run for ")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    await worker.stop()
    assert worker.liveness() == "the worker is not running"
    svc.close()
