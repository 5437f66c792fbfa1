"""Users of an account: created, listed, given a role, disabled and re-passworded by owners (and the CLI).

Roles: ``owner`` (everything, users and every key included), ``member`` (models, data, training, its own
keys), ``viewer`` (read only). An admin account's owners manage the users of any account. An account always
keeps one enabled owner: the last one cannot be demoted or disabled (409).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from outrider.core.errors import AuthenticationFailed, Conflict, InvalidRequest, NotFound, PermissionDenied
from outrider.services.accounts import ACCOUNT_NAME_PATTERN, ROLES, Principal
from outrider.services.passwords import check_new_password, generate_password, hash_password, verify_password
from outrider.storage.db import Database
from outrider.storage.queries import accounts as accounts_q
from outrider.storage.queries import now
from outrider.storage.queries import users as q
from outrider.storage.records import User

# Usernames follow account names' rules (letters, digits, '.', '_', '-'); both are matched without case.
USERNAME_PATTERN = ACCOUNT_NAME_PATTERN
EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,189}$"
SETTABLE = {"role", "email", "disabled", "password"}


@dataclass(frozen=True)
class CreatedUser:
    user: User
    password: str | None  # set only when generated now: shown once


def normalize_username(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(USERNAME_PATTERN, value):
        raise InvalidRequest(
            "username must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit",
            param="username",
        )
    return value.lower()


def normalize_email(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(EMAIL_PATTERN, value):
        raise InvalidRequest("email must look like name@domain (at most 254 characters)", param="email")
    return value.lower()


def _password_hash(password: str | None) -> tuple[str, str | None]:
    """The hash of ``password`` (checked), or of a generated one, returned too so that it is shown once."""
    generated = None if password is not None else generate_password()
    return hash_password(check_new_password(password) if password is not None else generated), generated


def check_role(role: object) -> str:
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}", param="role")
    return str(role)


def require_owner(principal: Principal, action: str) -> None:
    if principal.role != "owner":
        raise PermissionDenied(f"{action} needs the owner role (this caller is a {principal.role})")


class UserService:
    def __init__(self, db: Database, *, on_user_changed: Callable[[str], None] | None = None) -> None:
        self.db = db
        # Told a user's id after its role or state changed (the key authentication cache forgets its keys).
        self._on_user_changed = on_user_changed or (lambda _user_id: None)

    def create(
        self,
        by: Principal | None,
        *,
        username: str,
        role: str,
        email: str | None = None,
        password: str | None = None,
        account_id: str | None = None,
    ) -> CreatedUser:
        """Add a user. ``by``: the calling owner (None: the CLI); ``account_id`` defaults to the caller's own."""
        username, email, role = normalize_username(username), normalize_email(email), check_role(role)
        digest, generated = _password_hash(password)
        with self.db.session() as s:
            target = self._account_for(s, by, account_id)
            clash = q.taken(s, username=username, email=email)
            if clash is not None:
                raise Conflict(f"that {clash} is already in use", param=clash)
            user = q.create_user(s, account_id=target, username=username, email=email, role=role, password_hash=digest)
        return CreatedUser(user=user, password=generated)

    def list(self, by: Principal | None, account_id: str | None = None) -> list[User]:
        with self.db.session() as s:
            if by is None:
                return q.list_users(s, account_id)
            return q.list_users(s, self._account_for(s, by, account_id))

    def find(self, login: str) -> User | None:
        """The user with this username or email (any case), for the CLI."""
        with self.db.session() as s:
            found = q.find_login(s, login.lower())
        return found[0] if found else None

    def update(self, by: Principal | None, user_id: str, changes: dict) -> User:
        """Change a user's role, email, disabled state or password (owners; an admin account's owners for
        any account). A new password, a demotion or disabling also ends the user's sessions."""
        unknown = set(changes) - SETTABLE
        if unknown:
            raise InvalidRequest(f"users have no settable fields {sorted(unknown)}", param=sorted(unknown)[0])
        values = {}
        if "role" in changes:
            values["role"] = check_role(changes["role"])
        if "email" in changes:
            values["email"] = normalize_email(changes["email"])
        if "disabled" in changes:
            if not isinstance(changes["disabled"], bool):
                raise InvalidRequest("disabled must be true or false", param="disabled")
            values["disabled"] = changes["disabled"]
        password = changes.get("password")
        digest = hash_password(check_new_password(password)) if password is not None else None
        with self.db.session() as s:
            user = self._managed(s, by, user_id)
            changed_email = values.get("email") is not None and values["email"] != user.email
            if changed_email and q.taken(s, email=values["email"]):
                raise Conflict("that email is already in use", param="email")
            self._keep_an_owner(s, user, values)
            updated = q.update_user(s, user.id, values) if values else user
            if values.get("role", user.role) != user.role:
                updated = q.end_sessions(s, user.id) or updated  # a demoted user signs in again
            if digest is not None:
                updated = q.set_password(s, user.id, digest, now()) or updated
        self._on_user_changed(user.id)
        return updated

    def change_own_password(self, who: Principal, current: str, new: str) -> User:
        """A signed-in user's (or its key's) own password change; every earlier session of the user ends."""
        if who.user is None:
            raise InvalidRequest("this API key belongs to no user; an owner sets passwords with PATCH /users/{id}")
        digest = hash_password(check_new_password(new, "new_password"))
        with self.db.session() as s:
            if not verify_password(q.password_hash_of(s, who.user.id), current):
                raise AuthenticationFailed("the current password is wrong")
            updated = q.set_password(s, who.user.id, digest, now())
        if updated is None:
            raise NotFound("this user no longer exists")
        return updated

    def set_password(self, user_id: str, password: str | None) -> tuple[User, str | None]:
        """The CLI's password reset: ``password`` or a generated one (returned). Ends the user's sessions."""
        digest, generated = _password_hash(password)
        with self.db.session() as s:
            updated = q.set_password(s, user_id, digest, now())
        if updated is None:
            raise NotFound(f"user '{user_id}' not found")
        return updated, generated

    # -- rules ---------------------------------------------------------------------------------------------

    @staticmethod
    def _account_for(s: Session, by: Principal | None, account_id: str | None) -> str:
        """The account an owner acts on: its own, or (admin accounts only) the one named."""
        if by is not None:
            require_owner(by, "managing users")
        if account_id is None or (by is not None and account_id == by.account.id):
            if by is None:
                raise InvalidRequest("an account is needed", param="account_id")
            return by.account.id
        if (by is not None and not by.account.is_admin) or accounts_q.get_account(s, account_id) is None:
            raise NotFound(f"account '{account_id}' not found", param="account_id")
        return account_id

    @staticmethod
    def _managed(s: Session, by: Principal | None, user_id: str) -> User:
        user = q.get_user(s, user_id)
        if by is not None:
            visible = user is not None and (user.account_id == by.account.id or by.account.is_admin)
            if not visible:
                raise NotFound(f"user '{user_id}' not found")
            require_owner(by, "managing users")
        if user is None:
            raise NotFound(f"user '{user_id}' not found")
        return user

    @staticmethod
    def _keep_an_owner(s: Session, user: User, values: dict) -> None:
        stays_owner = values.get("role", user.role) == "owner" and not values.get("disabled", user.disabled)
        loses_owner = user.role == "owner" and not user.disabled and not stays_owner
        if loses_owner and q.count_active_owners(s, user.account_id) <= 1:
            raise Conflict("an account keeps at least one enabled owner; make another user owner first")
