"""Datasets and their versions (metadata only: the examples live in files, see ``datasets/files.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from outrider.core.ids import new_id
from outrider.storage.queries import as_utc, now
from outrider.storage.records import Dataset, DatasetVersion
from outrider.storage.tables import DatasetRow, DatasetVersionRow


@dataclass(frozen=True)
class NewVersion:
    id: str
    task_type: str
    status: str
    source: str
    path: str
    example_count: int = 0
    byte_size: int = 0
    sha256: str | None = None
    label_stats: dict[str, int] | None = None
    job_id: str | None = None


def _version(row: DatasetVersionRow) -> DatasetVersion:
    return DatasetVersion(
        id=row.id,
        dataset_id=row.dataset_id,
        version=row.version,
        task_type=row.task_type,
        status=row.status,
        source=row.source,
        example_count=row.example_count,
        byte_size=row.byte_size,
        sha256=row.sha256,
        label_stats=dict(row.label_stats or {}),
        path=row.path,
        job_id=row.job_id,
        created_at=as_utc(row.created_at),
        finished_at=as_utc(row.finished_at),
    )


def _dataset(row: DatasetRow, versions: list[DatasetVersionRow]) -> Dataset:
    return Dataset(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        versions=tuple(_version(v) for v in sorted(versions, key=lambda v: v.version)),
    )


def _versions_of(session: Session, dataset_ids: list[str]) -> dict[str, list[DatasetVersionRow]]:
    found: dict[str, list[DatasetVersionRow]] = {i: [] for i in dataset_ids}
    if dataset_ids:
        for row in session.scalars(select(DatasetVersionRow).where(DatasetVersionRow.dataset_id.in_(dataset_ids))):
            found[row.dataset_id].append(row)
    return found


def get_dataset(session: Session, account_id: str, name: str) -> Dataset | None:
    row = session.scalar(select(DatasetRow).where(DatasetRow.account_id == account_id, DatasetRow.name == name))
    if row is None:
        return None
    return _dataset(row, _versions_of(session, [row.id])[row.id])


def list_datasets(session: Session, account_id: str) -> list[Dataset]:
    rows = list(
        session.scalars(select(DatasetRow).where(DatasetRow.account_id == account_id).order_by(DatasetRow.name))
    )
    versions = _versions_of(session, [r.id for r in rows])
    return [_dataset(r, versions[r.id]) for r in rows]


def add_version(session: Session, account_id: str, name: str, new: NewVersion) -> tuple[Dataset, DatasetVersion]:
    """Create the dataset if needed and add the next version number. Two concurrent writers may pick the
    same number: the unique index refuses the second, whose caller retries in a new transaction."""
    stamp = now()
    dataset = session.scalar(select(DatasetRow).where(DatasetRow.account_id == account_id, DatasetRow.name == name))
    if dataset is None:
        dataset = DatasetRow(id=new_id("ds"), account_id=account_id, name=name, created_at=stamp, updated_at=stamp)
        session.add(dataset)
        session.flush()
    latest = session.scalar(
        select(func.max(DatasetVersionRow.version)).where(DatasetVersionRow.dataset_id == dataset.id)
    )
    row = DatasetVersionRow(
        id=new.id,
        dataset_id=dataset.id,
        version=(latest or 0) + 1,
        task_type=new.task_type,
        status=new.status,
        source=new.source,
        example_count=new.example_count,
        byte_size=new.byte_size,
        sha256=new.sha256,
        label_stats=new.label_stats or {},
        path=new.path,
        job_id=new.job_id,
        created_at=stamp,
        finished_at=stamp if new.status != "building" else None,
    )
    session.add(row)
    dataset.updated_at = stamp
    session.flush()
    return _dataset(dataset, _versions_of(session, [dataset.id])[dataset.id]), _version(row)


def get_version(session: Session, version_id: str) -> DatasetVersion | None:
    row = session.get(DatasetVersionRow, version_id)
    return _version(row) if row else None


def get_versions(session: Session, version_ids: list[str]) -> dict[str, DatasetVersion]:
    """The versions among ``version_ids`` that exist, by id, in one query."""
    if not version_ids:
        return {}
    rows = session.scalars(select(DatasetVersionRow).where(DatasetVersionRow.id.in_(version_ids)))
    return {row.id: _version(row) for row in rows}


def update_version(session: Session, version_id: str, **changes: Any) -> DatasetVersion | None:
    """Set columns of a version (``example_count``, ``byte_size``, ``label_stats``, ``status``, ...)."""
    row = session.get(DatasetVersionRow, version_id)
    if row is None:
        return None
    for column, value in changes.items():
        setattr(row, column, value)
    session.flush()
    return _version(row)


def versions_in_status(session: Session, status: str) -> list[DatasetVersion]:
    return [_version(r) for r in session.scalars(select(DatasetVersionRow).where(DatasetVersionRow.status == status))]


def delete_dataset(session: Session, dataset_id: str) -> None:
    session.execute(delete(DatasetVersionRow).where(DatasetVersionRow.dataset_id == dataset_id))
    session.execute(delete(DatasetRow).where(DatasetRow.id == dataset_id))


def delete_version(session: Session, version_id: str) -> None:
    session.execute(delete(DatasetVersionRow).where(DatasetVersionRow.id == version_id))
