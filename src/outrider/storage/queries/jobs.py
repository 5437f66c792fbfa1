"""Jobs: queue, atomic claim, heartbeat, progress, stop flag, finish, recovery of abandoned jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from outrider.core.ids import new_id
from outrider.storage.queries import as_utc, now
from outrider.storage.records import Job
from outrider.storage.tables import JobRow

FINISHED = ("complete", "failed", "stopped")


def _job(row: JobRow) -> Job:
    return Job(
        id=row.id,
        account_id=row.account_id,
        kind=row.kind,
        status=row.status,
        payload=dict(row.payload or {}),
        progress=dict(row.progress or {}),
        result=dict(row.result) if row.result is not None else None,
        error=row.error,
        stop_requested=row.stop_requested,
        worker_id=row.worker_id,
        created_at=as_utc(row.created_at),
        started_at=as_utc(row.started_at),
        finished_at=as_utc(row.finished_at),
        heartbeat_at=as_utc(row.heartbeat_at),
    )


def insert_job(session: Session, *, account_id: str, kind: str, payload: dict[str, Any], prefix: str = "job") -> Job:
    row = JobRow(
        id=new_id(prefix),
        account_id=account_id,
        kind=kind,
        status="queued",
        payload=payload,
        progress={},
        stop_requested=False,
        created_at=now(),
    )
    session.add(row)
    session.flush()
    return _job(row)


def get_job(session: Session, job_id: str, *, account_id: str | None = None) -> Job | None:
    row = session.get(JobRow, job_id)
    if row is None or (account_id is not None and row.account_id != account_id):
        return None
    return _job(row)


def list_jobs(
    session: Session, *, account_id: str, kind: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[Job], int]:
    where = [JobRow.account_id == account_id]
    if kind is not None:
        where.append(JobRow.kind == kind)
    total = session.scalar(select(func.count()).select_from(JobRow).where(*where)) or 0
    rows = session.scalars(
        select(JobRow).where(*where).order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit).offset(offset)
    )
    return [_job(r) for r in rows], total


def claim_next(session: Session, kinds: list[str], worker_id: str) -> Job | None:
    """Take the oldest queued job of one of ``kinds``. On PostgreSQL the candidate is locked with ``FOR UPDATE
    SKIP LOCKED``: workers claiming at the same time each take a different row without waiting on each other.
    On SQLite (one writer at a time) the UPDATE is a compare-and-set on ``status``: of two workers that picked
    the same candidate, exactly one changes a row, the other tries the next candidate."""
    if not kinds:
        return None
    queued = (
        select(JobRow).where(JobRow.status == "queued", JobRow.kind.in_(kinds)).order_by(JobRow.created_at, JobRow.id)
    )
    stamp = now()
    if session.get_bind().dialect.name == "postgresql":
        row = session.scalars(queued.limit(1).with_for_update(skip_locked=True)).first()
        if row is None:
            return None
        row.status, row.worker_id, row.started_at, row.heartbeat_at = "running", worker_id, stamp, stamp
        session.flush()
        return _job(row)
    candidates = session.scalars(queued.with_only_columns(JobRow.id).limit(8)).all()
    for job_id in candidates:
        claimed = session.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.status == "queued")
            .values(status="running", worker_id=worker_id, started_at=stamp, heartbeat_at=stamp)
        )
        if claimed.rowcount == 1:
            session.flush()
            row = session.get(JobRow, job_id)
            session.refresh(row)
            return _job(row)
    return None


def release_claim(session: Session, job_id: str, worker_id: str) -> bool:
    """Put a job this worker claimed but never started back in the queue (the worker stopped in between)."""
    released = session.execute(
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.status == "running", JobRow.worker_id == worker_id)
        .values(status="queued", worker_id=None, started_at=None, heartbeat_at=None)
    )
    return released.rowcount == 1


def heartbeat(session: Session, job_id: str, worker_id: str, progress: dict[str, Any] | None = None) -> Job | None:
    """Stamp the heartbeat (and progress) of a job this worker runs; None when it no longer owns it."""
    row = session.get(JobRow, job_id)
    if row is None or row.status != "running" or row.worker_id != worker_id:
        return None
    row.heartbeat_at = now()
    if progress is not None:
        row.progress = progress
    session.flush()
    return _job(row)


def set_result(session: Session, job_id: str, result: dict[str, Any]) -> None:
    row = session.get(JobRow, job_id)
    if row is not None:
        row.result = {**(row.result or {}), **result}


def finish_job(
    session: Session,
    job_id: str,
    *,
    status: str,
    worker_id: str | None = None,
    error: str | None = None,
    result: dict[str, Any] | None = None,
) -> Job | None:
    """Move a job to a final state; with ``worker_id``, only if that worker still owns it."""
    row = session.get(JobRow, job_id)
    if row is None or row.status in FINISHED or (worker_id is not None and row.worker_id != worker_id):
        return None
    row.status = status
    row.error = error
    row.finished_at = now()
    if result:
        row.result = {**(row.result or {}), **result}
    session.flush()
    return _job(row)


def request_stop(session: Session, job_id: str, *, account_id: str) -> Job | None:
    """Raise the stop flag; a job still queued stops at once (no worker will pick it up)."""
    row = session.get(JobRow, job_id)
    if row is None or row.account_id != account_id:
        return None
    if row.status == "queued":
        row.status, row.finished_at = "stopped", now()
    elif row.status == "running":
        row.stop_requested = True
    session.flush()
    return _job(row)


def running_jobs(session: Session) -> list[Job]:
    return [_job(r) for r in session.scalars(select(JobRow).where(JobRow.status == "running"))]


def fail_abandoned(session: Session, job_id: str, *, seen_heartbeat: datetime | None, reason: str) -> Job | None:
    """Mark a running job failed unless its heartbeat moved since it was judged abandoned (compare-and-set)."""
    row = session.get(JobRow, job_id)
    if row is None or row.status != "running" or as_utc(row.heartbeat_at) != seen_heartbeat:
        return None
    row.status, row.error, row.finished_at = "failed", reason, now()
    session.flush()
    return _job(row)


def count_by_kind_and_status(session: Session) -> dict[tuple[str, str], int]:
    """Every job counted by (kind, status): one aggregate query, for metrics."""
    rows = session.execute(select(JobRow.kind, JobRow.status, func.count()).group_by(JobRow.kind, JobRow.status))
    return {(kind, status): count for kind, status, count in rows}
