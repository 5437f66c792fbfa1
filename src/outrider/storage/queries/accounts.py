"""Accounts and API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from outrider.core.ids import new_id
from outrider.storage.queries import as_utc, now
from outrider.storage.queries.users import to_user
from outrider.storage.records import Account, ApiKey, User
from outrider.storage.tables import AccountRow, ApiKeyRow, UserRow


def _account(row: AccountRow) -> Account:
    return Account(
        id=row.id,
        name=row.name,
        is_admin=row.is_admin,
        created_at=as_utc(row.created_at),
        unlimited_credits=bool(row.unlimited_credits),
    )


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        prefix=row.prefix,
        model_pool=row.model_pool,
        optimize_mode=row.optimize_mode,
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at),
        revoked_at=as_utc(row.revoked_at),
        last_used_at=as_utc(row.last_used_at),
        rpm_limit=row.rpm_limit,
        tpm_limit=row.tpm_limit,
        user_id=row.user_id,
    )


def count_accounts(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AccountRow)) or 0


def create_account(
    session: Session, name: str, *, is_admin: bool = False, balance_micro_usd: int = 0, unlimited: bool = False
) -> Account:
    row = AccountRow(
        id=new_id("acct"),
        name=name,
        is_admin=is_admin,
        created_at=now(),
        balance_micro_usd=balance_micro_usd,
        reserved_micro_usd=0,
        unlimited_credits=unlimited,
    )
    session.add(row)
    session.flush()
    return _account(row)


def get_account(session: Session, account_id: str) -> Account | None:
    row = session.get(AccountRow, account_id)
    return _account(row) if row else None


def get_account_by_name(session: Session, name: str) -> Account | None:
    row = session.scalar(select(AccountRow).where(AccountRow.name == name))
    return _account(row) if row else None


def list_accounts(session: Session) -> list[Account]:
    return [_account(r) for r in session.scalars(select(AccountRow).order_by(AccountRow.created_at))]


def create_key(
    session: Session,
    *,
    account_id: str,
    name: str,
    prefix: str,
    key_hash: str,
    model_pool: list[str] | None = None,
    optimize_mode: str = "balanced",
    expires_at: datetime | None = None,
    rpm_limit: int | None = None,
    tpm_limit: int | None = None,
    user_id: str | None = None,
) -> ApiKey:
    row = ApiKeyRow(
        id=new_id("key"),
        account_id=account_id,
        name=name,
        prefix=prefix,
        key_hash=key_hash,
        model_pool=model_pool,
        optimize_mode=optimize_mode,
        created_at=now(),
        expires_at=expires_at,
        rpm_limit=rpm_limit,
        tpm_limit=tpm_limit,
        user_id=user_id,
    )
    session.add(row)
    session.flush()
    return _key(row)


KeyOwner = tuple[ApiKey, Account, User | None]


def _key_owner(where) -> object:
    return (
        select(ApiKeyRow, AccountRow, UserRow)
        .join(AccountRow, AccountRow.id == ApiKeyRow.account_id)
        .outerjoin(UserRow, UserRow.id == ApiKeyRow.user_id)
        .where(*where)
    )


def find_key_by_hash(session: Session, key_hash: str) -> KeyOwner | None:
    """The key with this hash, its account and the user it acts as (None: the account's own key)."""
    row = session.execute(_key_owner([ApiKeyRow.key_hash == key_hash])).first()
    if row is None:
        return None
    return _key(row[0]), _account(row[1]), to_user(row[2]) if row[2] is not None else None


def get_key_with_account(session: Session, key_id: str, *, account_id: str) -> KeyOwner | None:
    """Account ``account_id``'s key ``key_id`` with the account and its user (None when either no longer exists)."""
    row = session.execute(_key_owner([ApiKeyRow.id == key_id, ApiKeyRow.account_id == account_id])).first()
    if row is None:
        return None
    return _key(row[0]), _account(row[1]), to_user(row[2]) if row[2] is not None else None


def get_key(session: Session, key_id: str, *, account_id: str | None = None) -> ApiKey | None:
    row = session.get(ApiKeyRow, key_id)
    if row is None or (account_id is not None and row.account_id != account_id):
        return None
    return _key(row)


def list_keys(session: Session, account_id: str | None = None, *, user_id: str | None = None) -> list[ApiKey]:
    """Keys of an account (all accounts: None), only those of user ``user_id`` when given."""
    query = select(ApiKeyRow).order_by(ApiKeyRow.created_at)
    if account_id is not None:
        query = query.where(ApiKeyRow.account_id == account_id)
    if user_id is not None:
        query = query.where(ApiKeyRow.user_id == user_id)
    return [_key(r) for r in session.scalars(query)]


def revoke_key(session: Session, key_id: str) -> ApiKey | None:
    row = session.get(ApiKeyRow, key_id)
    if row is None:
        return None
    if row.revoked_at is None:
        row.revoked_at = now()
    session.flush()
    return _key(row)


def update_key(session: Session, key_id: str, changes: dict) -> ApiKey | None:
    """Apply ``changes`` (name, model_pool, optimize_mode, expires_at, rpm_limit, tpm_limit) to a key."""
    row = session.get(ApiKeyRow, key_id)
    if row is None:
        return None
    for field, value in changes.items():
        setattr(row, field, value)
    session.flush()
    return _key(row)


def touch_key(session: Session, key_id: str, when: datetime) -> None:
    row = session.get(ApiKeyRow, key_id)
    if row is not None:
        row.last_used_at = when
