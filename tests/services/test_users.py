"""UserService and SessionService against a real database: users and roles, passwords, session tokens, the
principal a queued job runs as, and the sign-in throttle (tests/api/test_sessions.py covers them over HTTP)."""

from __future__ import annotations

import time

import jwt
import pytest

from outrider.config import build_settings
from outrider.core.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    SessionInvalid,
)
from outrider.services.accounts import AccountService, Principal
from outrider.services.passwords import verify_password
from outrider.services.rate_limits import LocalWindows
from outrider.services.sessions import SessionService
from outrider.services.users import UserService
from outrider.storage.queries import users as users_q

PASSWORD = "a long enough password"


@pytest.fixture
def services(db, tmp_path):
    accounts = AccountService(db)
    boot = accounts.bootstrap("ork_unit_admin_key_0123456789", "the admin's password")
    users = UserService(db, on_user_changed=accounts.forget_user)
    settings = build_settings(data_dir=tmp_path, login_failures_per_user=2, login_window_s=3600)
    return accounts, users, SessionService(db, settings, LocalWindows()), boot


def as_owner(accounts: AccountService, account_name: str) -> Principal:
    _, first = accounts.create_account(account_name)
    return accounts.authenticate(first.raw_key)  # an account key: an owner's rights


def test_bootstrap_makes_an_owner_user_with_the_configured_or_a_generated_password(db, services):
    boot = services[3]
    assert boot.owner.username == "admin" and boot.owner.role == "owner" and boot.password is None  # configured
    with db.session() as s:
        assert verify_password(users_q.password_hash_of(s, boot.owner.id), "the admin's password")
    fresh = AccountService(db)
    assert fresh.bootstrap(None) is None  # once only


def test_a_generated_bootstrap_password_is_returned_once(tmp_path):
    from tests.databases import migrated_database

    with migrated_database(tmp_path) as db:
        boot = AccountService(db).bootstrap(None)
        assert boot.password and len(boot.password) >= 20
        with db.session() as s:
            assert verify_password(users_q.password_hash_of(s, boot.owner.id), boot.password)
        with pytest.raises(InvalidRequest, match="admin_password"):
            AccountService(db).bootstrap(None, "short")  # checked before anything else


def test_roles_owners_and_account_boundaries(services):
    accounts, users, _, _ = services
    team, other = as_owner(accounts, "team"), as_owner(accounts, "other")
    member = users.create(team, username="Mem", role="member", password=PASSWORD).user
    assert member.username == "mem" and member.account_id == team.account.id
    member_principal = Principal(account=team.account, key=None, user=member)
    with pytest.raises(PermissionDenied):
        users.create(member_principal, username="x", role="owner")
    with pytest.raises(PermissionDenied):
        users.update(member_principal, member.id, {"role": "owner"})
    with pytest.raises(NotFound):
        users.update(other, member.id, {"role": "viewer"})
    with pytest.raises(NotFound):
        users.create(other, username="y", role="member", account_id=team.account.id)
    with pytest.raises(InvalidRequest):
        users.update(team, member.id, {"is_admin": True})
    with pytest.raises(Conflict):
        users.create(team, username="MEM", role="member")
    owner = users.create(team, username="boss", role="owner").user
    with pytest.raises(Conflict, match="owner"):
        users.update(team, owner.id, {"disabled": True})
    assert users.update(team, member.id, {"role": "owner"}).role == "owner"
    assert users.update(team, owner.id, {"disabled": True}).disabled


def test_a_queued_job_runs_as_the_user_who_queued_it_while_enabled(services):
    accounts, users, _, _ = services
    team = as_owner(accounts, "team")
    member = users.create(team, username="queuer", role="member", password=PASSWORD).user
    found = accounts.principal_of(team.account.id, None, member.id)
    assert found.key is None and found.user == member and found.role == "member"
    assert accounts.principal_of("acct_other", None, member.id) is None
    users.update(team, member.id, {"disabled": True})
    assert accounts.principal_of(team.account.id, None, member.id) is None


async def test_sign_in_tokens_sign_out_and_the_throttle(services):
    accounts, users, sessions, _ = services
    team = as_owner(accounts, "team")
    user = users.create(team, username="ada", email="ada@example.org", role="viewer", password=PASSWORD).user
    who, token = await sessions.login("ADA@example.org", PASSWORD, "10.0.0.1")
    assert who.user.id == user.id and who.role == "viewer" and who.key is None
    session = sessions.authenticate(token.token, token.csrf_token)
    assert session.principal.user.id == user.id and session.renewed is None
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert claims["ver"] == 0 and claims["acc"] == team.account.id
    forged = jwt.encode({**claims, "exp": int(time.time()) - 5}, sessions.settings.secret_key, algorithm="HS256")
    with pytest.raises(SessionInvalid, match="expired"):
        sessions.authenticate(forged, None)
    sessions.logout(who)
    with pytest.raises(SessionInvalid, match="ended"):
        sessions.authenticate(token.token, token.csrf_token)
    with pytest.raises(AuthenticationFailed):
        await sessions.login("ada", "wrong password", "10.0.0.1")
    with pytest.raises(AuthenticationFailed):
        await sessions.login("ada", "wrong password", "10.0.0.1")
    with pytest.raises(RateLimited) as throttled:
        await sessions.login("ada", PASSWORD, "10.0.0.1")
    assert 1 <= throttled.value.retry_after <= 3600


def test_own_password_changes_need_the_current_one(services):
    accounts, users, _, _ = services
    team = as_owner(accounts, "team")
    user = users.create(team, username="pat", role="member", password=PASSWORD).user
    who = Principal(account=team.account, key=None, user=user)
    with pytest.raises(AuthenticationFailed):
        users.change_own_password(who, "not it at all", "another password")
    with pytest.raises(InvalidRequest):
        users.change_own_password(who, PASSWORD, "short")
    changed = users.change_own_password(who, PASSWORD, "another password")
    assert changed.session_version == user.session_version + 1
    with pytest.raises(InvalidRequest, match="no user"):
        users.change_own_password(team, PASSWORD, "another password")


def test_passwords_are_argon2_hashes_checked_without_raising():
    from outrider.services.passwords import check_new_password, hash_password

    digest = hash_password(PASSWORD)
    assert digest.startswith("$argon2id$") and PASSWORD not in digest
    assert verify_password(digest, PASSWORD) and not verify_password(digest, PASSWORD + "!")
    assert not verify_password(None, PASSWORD)  # no user: a dummy hash is verified, never a match
    assert not verify_password("not a hash", PASSWORD) and not verify_password(digest, "lone \udc00 surrogate")
    for bad in ("short", "x" * 1025, "tab\tinside", "lone \udc00 surrogate", None, 12345678):
        with pytest.raises(InvalidRequest):
            check_new_password(bad)
