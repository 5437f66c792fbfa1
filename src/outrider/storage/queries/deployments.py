"""Deployments and the history of their targets. A change of target is a compare-and-set on the row's
``version``, written with its history event in the same transaction."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from outrider.core.ids import new_id
from outrider.storage.queries import as_utc, now
from outrider.storage.records import Deployment, DeploymentEvent
from outrider.storage.tables import DeploymentEventRow, DeploymentRow

MAX_HISTORY = 200  # events returned with a deployment, newest first


def _event(row: DeploymentEventRow) -> DeploymentEvent:
    return DeploymentEvent(
        version=row.version,
        action=row.action,
        target=row.target,
        previous_target=row.previous_target,
        actor_id=row.actor_id,
        actor_name=row.actor_name,
        note=row.note,
        created_at=as_utc(row.created_at),
    )


def _deployment(row: DeploymentRow, events: list[DeploymentEventRow]) -> Deployment:
    return Deployment(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        target=row.target,
        version=row.version,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        history=tuple(_event(e) for e in events),
    )


def _events(session: Session, deployment_id: str, limit: int = MAX_HISTORY) -> list[DeploymentEventRow]:
    return list(
        session.scalars(
            select(DeploymentEventRow)
            .where(DeploymentEventRow.deployment_id == deployment_id)
            .order_by(DeploymentEventRow.version.desc())
            .limit(limit)
        )
    )


def _row(session: Session, account_id: str, name: str) -> DeploymentRow | None:
    return session.scalar(
        select(DeploymentRow).where(DeploymentRow.account_id == account_id, DeploymentRow.name == name)
    )


def current_target(session: Session, account_id: str, name: str) -> str | None:
    """The model id the account's deployment ``name`` points at now (the per-call lookup: one indexed read)."""
    return session.scalar(
        select(DeploymentRow.target).where(DeploymentRow.account_id == account_id, DeploymentRow.name == name)
    )


def deployment_targets(session: Session, account_id: str) -> list[tuple[str, str]]:
    """(name, target) of each of the account's deployments, by name (one read, no history)."""
    rows = session.execute(
        select(DeploymentRow.name, DeploymentRow.target)
        .where(DeploymentRow.account_id == account_id)
        .order_by(DeploymentRow.name)
    )
    return [(name, target) for name, target in rows]


def count_deployments(session: Session, account_id: str) -> int:
    return session.scalar(select(func.count()).where(DeploymentRow.account_id == account_id)) or 0


def get_deployment(session: Session, account_id: str, name: str, *, history: int = MAX_HISTORY) -> Deployment | None:
    row = _row(session, account_id, name)
    return _deployment(row, _events(session, row.id, history)) if row is not None else None


def list_deployments(session: Session, account_id: str, *, history: int = MAX_HISTORY) -> list[Deployment]:
    rows = session.scalars(
        select(DeploymentRow).where(DeploymentRow.account_id == account_id).order_by(DeploymentRow.name)
    ).all()
    return [_deployment(row, _events(session, row.id, history)) for row in rows]


def all_events(session: Session, deployment_id: str) -> list[DeploymentEvent]:
    """Every change of the deployment, oldest first (what a rollback walks back through)."""
    rows = session.scalars(
        select(DeploymentEventRow)
        .where(DeploymentEventRow.deployment_id == deployment_id)
        .order_by(DeploymentEventRow.version)
    )
    return [_event(row) for row in rows]


def create_deployment(
    session: Session,
    *,
    account_id: str,
    name: str,
    target: str,
    actor_id: str | None,
    actor_name: str,
    note: str | None,
) -> Deployment:
    """A new deployment and its ``create`` event (a concurrent create of the same name fails on the unique index)."""
    stamp = now()
    row = DeploymentRow(
        id=new_id("dep"), account_id=account_id, name=name, target=target, version=1, created_at=stamp, updated_at=stamp
    )
    session.add(row)
    session.flush()
    _add_event(session, row.id, 1, "create", target, None, actor_id, actor_name, note)
    return get_deployment(session, account_id, name)  # type: ignore[return-value]


def change_target(
    session: Session,
    deployment: Deployment,
    *,
    action: str,
    target: str,
    actor_id: str | None,
    actor_name: str,
    note: str | None,
) -> Deployment | None:
    """Point ``deployment`` at ``target`` if nobody changed it since it was read (None if somebody did)."""
    version = deployment.version + 1
    changed = session.execute(
        update(DeploymentRow)
        .where(DeploymentRow.id == deployment.id, DeploymentRow.version == deployment.version)
        .values(target=target, version=version, updated_at=now())
    ).rowcount
    if changed != 1:
        return None
    _add_event(session, deployment.id, version, action, target, deployment.target, actor_id, actor_name, note)
    return get_deployment(session, deployment.account_id, deployment.name)


def _add_event(
    session: Session,
    deployment_id: str,
    version: int,
    action: str,
    target: str,
    previous: str | None,
    actor_id: str | None,
    actor_name: str,
    note: str | None,
) -> None:
    session.add(
        DeploymentEventRow(
            id=new_id("depev"),
            deployment_id=deployment_id,
            version=version,
            action=action,
            target=target,
            previous_target=previous,
            actor_id=actor_id,
            actor_name=actor_name,
            note=note,
            created_at=now(),
        )
    )
    session.flush()


def delete_deployment(session: Session, account_id: str, name: str) -> bool:
    row = _row(session, account_id, name)
    if row is None:
        return False
    session.execute(delete(DeploymentEventRow).where(DeploymentEventRow.deployment_id == row.id))
    session.delete(row)
    return True
