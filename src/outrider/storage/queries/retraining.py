"""Retrain policies of deployments, their runs, and the corrections that trigger them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from outrider.storage.queries import as_utc, now
from outrider.storage.records import RetrainPolicy
from outrider.storage.tables import DeploymentRow, FeedbackRow, InferenceRow, RetrainPolicyRow


def _policy(row: RetrainPolicyRow, name: str) -> RetrainPolicy:
    return RetrainPolicy(
        deployment_id=row.deployment_id,
        account_id=row.account_id,
        deployment=name,
        dataset=row.dataset,
        task_type=row.task_type,
        min_corrections=row.min_corrections,
        margin=row.margin,
        holdout_fraction=row.holdout_fraction,
        training=dict(row.training),
        corrections_since=as_utc(row.corrections_since),
        revision=row.revision,
        run=row.run,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def _joined() -> Any:
    return select(RetrainPolicyRow, DeploymentRow.name).join(
        DeploymentRow, DeploymentRow.id == RetrainPolicyRow.deployment_id
    )


def get_policy(session: Session, account_id: str, name: str) -> RetrainPolicy | None:
    found = session.execute(_joined().where(DeploymentRow.account_id == account_id, DeploymentRow.name == name)).first()
    return _policy(found[0], found[1]) if found else None


def all_policies(session: Session) -> list[RetrainPolicy]:
    return [_policy(row, name) for row, name in session.execute(_joined().order_by(RetrainPolicyRow.created_at))]


def put_policy(session: Session, *, deployment_id: str, account_id: str, name: str, **fields: Any) -> RetrainPolicy:
    """Create or replace the policy's settings (a run in progress, and the corrections already used, stay)."""
    row = session.get(RetrainPolicyRow, deployment_id)
    stamp = now()
    if row is None:
        row = RetrainPolicyRow(deployment_id=deployment_id, account_id=account_id, created_at=stamp, revision=0)
        session.add(row)
    for key, value in fields.items():
        setattr(row, key, value)
    row.updated_at = stamp
    row.revision = (row.revision or 0) + 1
    session.flush()
    return _policy(row, name)


def delete_policy(session: Session, deployment_id: str) -> bool:
    row = session.get(RetrainPolicyRow, deployment_id)
    if row is None:
        return False
    session.delete(row)
    return True


def advance(
    session: Session, policy: RetrainPolicy, *, run: dict[str, Any] | None, corrections_since: datetime | None = None
) -> bool:
    """Write the run's next state if nobody changed the policy since it was read (False if somebody did)."""
    values: dict[str, Any] = {"run": run, "revision": policy.revision + 1, "updated_at": now()}
    if corrections_since is not None:
        values["corrections_since"] = corrections_since
    changed = session.execute(
        update(RetrainPolicyRow)
        .where(RetrainPolicyRow.deployment_id == policy.deployment_id, RetrainPolicyRow.revision == policy.revision)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    return changed == 1


def count_corrections(session: Session, account_id: str, model_id: str, since: datetime | None) -> int:
    """Human corrections (``incorrect`` verdicts) of calls to ``model_id`` given after ``since``."""
    query = (
        select(func.count())
        .select_from(FeedbackRow)
        .join(InferenceRow, InferenceRow.id == FeedbackRow.inference_id)
        .where(
            FeedbackRow.account_id == account_id,
            FeedbackRow.verdict == "incorrect",
            InferenceRow.account_id == account_id,
            InferenceRow.model_id == model_id,
        )
    )
    if since is not None:
        query = query.where(FeedbackRow.updated_at > since)
    return session.scalar(query) or 0
