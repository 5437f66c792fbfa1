"""Judge configurations and the queue of sampled records waiting for their judge."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from outrider.core.ids import new_id
from outrider.storage.queries import as_utc, now
from outrider.storage.records import JudgeConfig, QueuedJudgement
from outrider.storage.tables import JudgeConfigRow, JudgeQueueRow

ACCOUNT_WIDE = ""  # the project_id stored for an account's own configuration


def _config(row: JudgeConfigRow) -> JudgeConfig:
    return JudgeConfig(
        account_id=row.account_id,
        project_id=row.project_id or None,
        judge_model=row.judge_model,
        sampling_rate=row.sampling_rate,
        updated_by=row.updated_by,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def get_config(session: Session, account_id: str, project_id: str | None) -> JudgeConfig | None:
    row = session.scalar(
        select(JudgeConfigRow).where(
            JudgeConfigRow.account_id == account_id, JudgeConfigRow.project_id == (project_id or ACCOUNT_WIDE)
        )
    )
    return _config(row) if row else None


def list_configs(session: Session, account_id: str) -> list[JudgeConfig]:
    rows = session.scalars(
        select(JudgeConfigRow).where(JudgeConfigRow.account_id == account_id).order_by(JudgeConfigRow.project_id)
    )
    return [_config(row) for row in rows]


def put_config(
    session: Session, *, account_id: str, project_id: str | None, judge_model: str, sampling_rate: float, actor: str
) -> tuple[JudgeConfig, bool]:
    """Create or replace the configuration of that scope; (config, created)."""
    scope = project_id or ACCOUNT_WIDE
    row = session.scalar(
        select(JudgeConfigRow).where(JudgeConfigRow.account_id == account_id, JudgeConfigRow.project_id == scope)
    )
    stamp = now()
    created = row is None
    if row is None:
        row = JudgeConfigRow(id=new_id("jcfg"), account_id=account_id, project_id=scope, created_at=stamp)
        session.add(row)
    row.judge_model, row.sampling_rate, row.updated_by, row.updated_at = judge_model, sampling_rate, actor, stamp
    session.flush()
    return _config(row), created


def delete_config(session: Session, account_id: str, project_id: str | None) -> bool:
    result = session.execute(
        delete(JudgeConfigRow).where(
            JudgeConfigRow.account_id == account_id, JudgeConfigRow.project_id == (project_id or ACCOUNT_WIDE)
        )
    )
    return result.rowcount > 0


def sampled(inference_id: str, rate: float) -> bool:
    """Whether a record is in the judged sample: a hash of its id against the rate, so the decision is the same
    wherever and whenever it is made (and a test can know it in advance)."""
    if rate <= 0:
        return False
    draw = int.from_bytes(hashlib.sha256(inference_id.encode()).digest()[:8], "big") / 2**64
    return draw < rate


# What ``enqueue_sampled`` needs of an account's configurations: (account_id, project_id or ACCOUNT_WIDE) ->
# (judge model, sampling rate).
SamplingConfigs = dict[tuple[str, str], tuple[str, float]]


def sampling_configs(session: Session, account_ids: set[str]) -> SamplingConfigs:
    """The judge configurations of these accounts, for ``enqueue_sampled`` (one indexed read)."""
    if not account_ids:
        return {}
    columns = (JudgeConfigRow.account_id, JudgeConfigRow.project_id, JudgeConfigRow.judge_model)
    rows = session.execute(
        select(*columns, JudgeConfigRow.sampling_rate).where(JudgeConfigRow.account_id.in_(account_ids))
    )
    return {(account_id, project): (model, rate) for account_id, project, model, rate in rows}


def enqueue_sampled(
    session: Session, records: list[tuple[str, str, str | None]], configs: SamplingConfigs | None = None
) -> int:
    """Queue for judging those of the new successful records ``(inference_id, account_id, project_id)`` that
    their configuration samples (a project's own configuration, else the account's). ``configs``: the accounts'
    configurations when the caller has them (the recorder keeps them cached), else they are read here."""
    if not records:
        return 0
    if configs is None:
        configs = sampling_configs(session, {account_id for _, account_id, _ in records})
    if not configs:
        return 0
    stamp = now()
    queued = []
    for inference_id, account_id, project_id in records:
        config = configs.get((account_id, project_id or ACCOUNT_WIDE)) or configs.get((account_id, ACCOUNT_WIDE))
        if config is not None and sampled(inference_id, config[1]):
            queued.append(
                {
                    "inference_id": inference_id,
                    "account_id": account_id,
                    "judge_model": config[0],
                    "attempts": 0,
                    "not_before": stamp,
                    "created_at": stamp,
                }
            )
    if queued:
        session.execute(insert(JudgeQueueRow.__table__), queued)
    return len(queued)


def claim_due(session: Session, *, limit: int, lease_until: datetime) -> list[QueuedJudgement]:
    """Claim up to ``limit`` due entries, oldest first: each is a compare-and-set on its ``attempts`` that also
    moves ``not_before`` to the end of the lease, so two workers never judge one record at the same time and
    an entry whose worker died is due again once its lease is over."""
    rows = session.scalars(
        select(JudgeQueueRow).where(JudgeQueueRow.not_before <= now()).order_by(JudgeQueueRow.not_before).limit(limit)
    ).all()
    claimed = []
    for row in rows:
        attempts = row.attempts + 1
        result = session.execute(
            update(JudgeQueueRow)
            .where(JudgeQueueRow.inference_id == row.inference_id, JudgeQueueRow.attempts == row.attempts)
            .values(attempts=attempts, not_before=lease_until)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:
            claimed.append(QueuedJudgement(row.inference_id, row.account_id, row.judge_model, attempts))
    return claimed


def retry_later(session: Session, inference_id: str, not_before: datetime) -> None:
    session.execute(
        update(JudgeQueueRow)
        .where(JudgeQueueRow.inference_id == inference_id)
        .values(not_before=not_before)
        .execution_options(synchronize_session=False)
    )


def dequeue(session: Session, inference_id: str) -> None:
    session.execute(delete(JudgeQueueRow).where(JudgeQueueRow.inference_id == inference_id))


def pending_count(session: Session, account_id: str) -> int:
    return session.scalar(select(func.count()).where(JudgeQueueRow.account_id == account_id)) or 0
