"""Training: checkpoints of training jobs, the account's finished jobs, and deleting a job with its checkpoints.

Training jobs are rows of the generic ``jobs`` table (``storage/queries/jobs.py``), kind ``training``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from outrider.core.ids import new_id
from outrider.storage.queries import as_utc, now
from outrider.storage.queries.jobs import _job as job_record
from outrider.storage.records import Job, TrainingCheckpoint
from outrider.storage.tables import JobRow, TrainingCheckpointRow

CHECKPOINT_PREFIX = "ckpt"


def _checkpoint(row: TrainingCheckpointRow) -> TrainingCheckpoint:
    return TrainingCheckpoint(
        id=row.id,
        job_id=row.job_id,
        account_id=row.account_id,
        step=row.step,
        epoch=row.epoch,
        metrics=dict(row.metrics or {}),
        path=row.path,
        created_at=as_utc(row.created_at),
    )


def insert_checkpoint(
    session: Session,
    *,
    job_id: str,
    account_id: str,
    step: int,
    epoch: int | None,
    metrics: dict[str, Any],
    path: str,
) -> TrainingCheckpoint:
    row = TrainingCheckpointRow(
        id=new_id(CHECKPOINT_PREFIX),
        job_id=job_id,
        account_id=account_id,
        step=step,
        epoch=epoch,
        metrics=metrics,
        path=path,
        created_at=now(),
    )
    session.add(row)
    session.flush()
    return _checkpoint(row)


def get_checkpoint(session: Session, checkpoint_id: str, *, account_id: str | None = None) -> TrainingCheckpoint | None:
    row = session.get(TrainingCheckpointRow, checkpoint_id)
    if row is None or (account_id is not None and row.account_id != account_id):
        return None
    return _checkpoint(row)


def list_checkpoints(session: Session, job_id: str) -> list[TrainingCheckpoint]:
    rows = session.scalars(
        select(TrainingCheckpointRow)
        .where(TrainingCheckpointRow.job_id == job_id)
        .order_by(TrainingCheckpointRow.step, TrainingCheckpointRow.created_at)
    )
    return [_checkpoint(r) for r in rows]


def finished_jobs(session: Session, account_id: str, kind: str, status: str = "complete") -> list[Job]:
    rows = session.scalars(
        select(JobRow)
        .where(JobRow.account_id == account_id, JobRow.kind == kind, JobRow.status == status)
        .order_by(JobRow.created_at.desc())
    )
    return [job_record(r) for r in rows]


def delete_job(session: Session, job_id: str) -> None:
    """The job row and its checkpoints' rows (their files are the caller's to remove)."""
    session.execute(delete(TrainingCheckpointRow).where(TrainingCheckpointRow.job_id == job_id))
    session.execute(delete(JobRow).where(JobRow.id == job_id))
