"""Users: the people who sign in to an account."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from outrider.core.ids import new_id
from outrider.storage.queries import as_utc, now
from outrider.storage.records import User
from outrider.storage.tables import UserRow


def to_user(row: UserRow) -> User:
    return User(
        id=row.id,
        account_id=row.account_id,
        username=row.username,
        email=row.email,
        role=row.role,
        session_version=row.session_version,
        disabled=bool(row.disabled),
        created_at=as_utc(row.created_at),
        password_changed_at=as_utc(row.password_changed_at),
    )


def create_user(
    session: Session, *, account_id: str, username: str, email: str | None, role: str, password_hash: str
) -> User:
    stamp = now()
    row = UserRow(
        id=new_id("user"),
        account_id=account_id,
        username=username,
        email=email,
        role=role,
        password_hash=password_hash,
        session_version=0,
        disabled=False,
        created_at=stamp,
        password_changed_at=stamp,
    )
    session.add(row)
    session.flush()
    return to_user(row)


def get_user(session: Session, user_id: str) -> User | None:
    row = session.get(UserRow, user_id)
    return to_user(row) if row else None


def find_login(session: Session, login: str) -> tuple[User, str] | None:
    """The user whose username or email is ``login`` (already lower-cased), with its password hash."""
    row = session.scalar(select(UserRow).where(or_(UserRow.username == login, UserRow.email == login)))
    return (to_user(row), row.password_hash) if row else None


def password_hash_of(session: Session, user_id: str) -> str | None:
    return session.scalar(select(UserRow.password_hash).where(UserRow.id == user_id))


def taken(session: Session, *, username: str | None = None, email: str | None = None) -> str | None:
    """Which of ``username`` / ``email`` another user already has (as a username or an email), if any."""
    for field, value in (("username", username), ("email", email)):
        if value is not None and session.scalar(
            select(UserRow.id).where(or_(UserRow.username == value, UserRow.email == value))
        ):
            return field
    return None


def list_users(session: Session, account_id: str | None = None) -> list[User]:
    query = select(UserRow).order_by(UserRow.created_at, UserRow.id)
    if account_id is not None:
        query = query.where(UserRow.account_id == account_id)
    return [to_user(r) for r in session.scalars(query)]


def count_active_owners(session: Session, account_id: str) -> int:
    query = select(func.count()).where(
        UserRow.account_id == account_id, UserRow.role == "owner", UserRow.disabled.is_(False)
    )
    return session.scalar(query) or 0


def update_user(session: Session, user_id: str, changes: dict) -> User | None:
    """Apply ``changes`` (role, email, disabled). Disabling a user ends its sessions."""
    row = session.get(UserRow, user_id)
    if row is None:
        return None
    for field, value in changes.items():
        setattr(row, field, value)
    if changes.get("disabled"):
        row.session_version += 1
    session.flush()
    return to_user(row)


def set_password(session: Session, user_id: str, password_hash: str, when: datetime) -> User | None:
    """Store a new password hash and end every session issued before (the version moves on)."""
    row = session.get(UserRow, user_id)
    if row is None:
        return None
    row.password_hash = password_hash
    row.password_changed_at = when
    row.session_version += 1
    session.flush()
    return to_user(row)


def end_sessions(session: Session, user_id: str) -> User | None:
    """Sign-out: every session token of this user issued so far stops being accepted."""
    row = session.get(UserRow, user_id)
    if row is None:
        return None
    row.session_version += 1
    session.flush()
    return to_user(row)
