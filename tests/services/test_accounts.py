"""AccountService against a real database: bootstrap, accounts, authentication, and the rules of what a key may
do to keys (docs/keys-and-accounts.md), at the unit level (tests/api/test_key_scope.py covers them over HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from outrider.core.errors import AuthenticationFailed, Conflict, InvalidRequest, NotFound, PermissionDenied
from outrider.services.accounts import AccountService, Principal, hash_key, is_restricted
from outrider.storage.queries import accounts as accounts_q
from outrider.storage.queries import billing as billing_q

ADMIN_KEY = "ork_unit_admin_key_0123456789"
SOON = datetime.now(UTC) + timedelta(days=1)
LATER = datetime.now(UTC) + timedelta(days=30)


@pytest.fixture
def accounts(db) -> AccountService:
    service = AccountService(db, initial_credit_micro_usd=0)
    service.bootstrap(ADMIN_KEY)
    return service


def principal(accounts: AccountService, **settings: object) -> Principal:
    """A key of a fresh account (unrestricted unless ``settings`` restrict it), as its caller."""
    account, first = accounts.create_account(f"acct-{len(accounts.list_accounts())}")
    if not settings:
        return accounts.authenticate(first.raw_key)
    issued = accounts.issue_key(account.id, name="restricted", **settings)
    return accounts.authenticate(issued.raw_key)


def issue(accounts: AccountService, who: Principal, **settings: object):
    return accounts.issue_key(who.account.id, name="child", issuer=who, **settings).key


# -- bootstrap, accounts, authentication --------------------------------------------------------------------
def test_bootstrap_runs_once_with_an_unlimited_admin(db):
    service = AccountService(db)
    done = service.bootstrap(None)
    assert done.account.is_admin and done.account.unlimited_credits and done.raw_key.startswith("ork_")
    assert service.bootstrap(None) is None  # already done: nothing created, no key shown again
    assert service.authenticate(done.raw_key).account == done.account


def test_bootstrap_refuses_a_weak_configured_admin_key(db):
    with pytest.raises(InvalidRequest, match="ork_"):
        AccountService(db).bootstrap("short")


def test_accounts_have_valid_unique_names_and_the_initial_credit(db):
    service = AccountService(db, initial_credit_micro_usd=5_000)
    account, first = service.create_account("team-a")
    assert not is_restricted(first.key) and first.key.name == "default"
    with db.session() as s:
        assert billing_q.get_balance(s, account.id).balance_micro_usd == 5_000
    with pytest.raises(Conflict):
        service.create_account("team-a")
    for bad in ("../evil", "-dash", "", "x" * 101):
        with pytest.raises(InvalidRequest):
            service.create_account(bad)


def test_authentication_refuses_missing_unknown_revoked_and_expired_keys(accounts, db):
    with pytest.raises(AuthenticationFailed, match="missing"):
        accounts.authenticate(None)
    with pytest.raises(AuthenticationFailed, match="invalid"):
        accounts.authenticate("ork_not_a_key_at_all_000000")
    who = principal(accounts)
    issued = accounts.issue_key(who.account.id, name="short-lived", expires_at=SOON)
    with db.session() as s:  # expiries cannot be set in the past through the service: age the row directly
        accounts_q.update_key(s, issued.key.id, {"expires_at": datetime.now(UTC) - timedelta(seconds=1)})
    with pytest.raises(AuthenticationFailed, match="expired"):
        accounts.authenticate(issued.raw_key)
    other = accounts.issue_key(who.account.id, name="to-revoke")
    accounts.revoke_key(who, other.key.id)
    with pytest.raises(PermissionDenied, match="revoked"):
        accounts.authenticate(other.raw_key)


def test_authentication_stamps_last_use_and_the_cache_forgets_a_changed_key(db):
    service = AccountService(db, auth_cache_ttl_s=60)
    service.bootstrap(ADMIN_KEY)
    admin = service.authenticate(ADMIN_KEY)
    assert admin.key.last_used_at is None  # stamped in the row, the principal is what was read
    with db.session() as s:
        assert accounts_q.find_key_by_hash(s, hash_key(ADMIN_KEY))[0].last_used_at is not None
    assert service.cached_principal(ADMIN_KEY) == admin
    service.update_key(admin, admin.key.id, {"name": "renamed"})
    assert service.cached_principal(ADMIN_KEY) is None  # the next request reads the change
    assert service.authenticate(ADMIN_KEY).key.name == "renamed"


def test_key_settings_are_validated(accounts):
    who = principal(accounts)
    for settings, param in (
        ({"rpm_limit": 0}, "rpm_limit"),
        ({"tpm_limit": True}, "tpm_limit"),
        ({"optimize_mode": "fastest"}, "optimize_mode"),
        ({"expires_at": datetime.now(UTC) - timedelta(minutes=1)}, "expires_at"),
    ):
        with pytest.raises(InvalidRequest) as caught:
            accounts.issue_key(who.account.id, name="k", **settings)
        assert caught.value.param == param
    with pytest.raises(InvalidRequest, match="control"):
        accounts.issue_key(who.account.id, name="bad\nname")
    with pytest.raises(NotFound):
        accounts.issue_key("acct_missing", name="k")
    key = accounts.issue_key(who.account.id, name="k", expires_at=datetime(2999, 1, 1)).key
    assert key.expires_at.tzinfo is not None  # a time without a zone is taken as UTC
    with pytest.raises(InvalidRequest, match="no settable"):
        accounts.update_key(who, key.id, {"account_id": "acct_other"})


# -- what a key may do to keys ------------------------------------------------------------------------------
def test_an_unrestricted_key_issues_and_lifts_any_restriction(accounts):
    who = principal(accounts)
    child = issue(accounts, who, model_pool=["a"], rpm_limit=5, expires_at=SOON)
    lifted = accounts.update_key(who, child.id, {"model_pool": None, "rpm_limit": None, "expires_at": None})
    assert not is_restricted(lifted)


@pytest.mark.parametrize(
    ("caller", "asked", "param"),
    [
        ({"model_pool": ["a", "b"]}, {"model_pool": ["a", "c"]}, "model_pool"),
        ({"model_pool": ["a"]}, {}, "model_pool"),  # no pool is every model: wider
        ({"rpm_limit": 10}, {"rpm_limit": 20}, "rpm_limit"),
        ({"rpm_limit": 10}, {}, "rpm_limit"),
        ({"tpm_limit": 100}, {"tpm_limit": 101}, "tpm_limit"),
        ({"expires_at": SOON}, {"expires_at": LATER}, "expires_at"),
        ({"expires_at": SOON}, {}, "expires_at"),
    ],
)
def test_a_restricted_key_cannot_issue_a_wider_key(accounts, caller, asked, param):
    who = principal(accounts, **caller)
    with pytest.raises(PermissionDenied) as caught:
        issue(accounts, who, **asked)
    assert caught.value.param == param


def test_a_restricted_key_issues_keys_within_its_bounds(accounts):
    who = principal(accounts, model_pool=["a", "b"], rpm_limit=10, tpm_limit=100, expires_at=LATER)
    child = issue(accounts, who, model_pool=["b"], rpm_limit=10, tpm_limit=50, expires_at=SOON)
    assert child.model_pool == ["b"] and child.rpm_limit == 10
    # Within bounds: the caller may change it, keeping it there, and revoke it.
    assert accounts.update_key(who, child.id, {"rpm_limit": 3, "optimize_mode": "cost"}).rpm_limit == 3
    with pytest.raises(PermissionDenied):
        accounts.update_key(who, child.id, {"model_pool": ["a", "b", "c"]})
    assert accounts.revoke_key(who, child.id).revoked_at is not None


def test_a_restricted_key_cannot_touch_a_wider_key_of_its_account(accounts):
    owner = principal(accounts)
    narrow = accounts.authenticate(accounts.issue_key(owner.account.id, name="narrow", rpm_limit=5).raw_key)
    with pytest.raises(PermissionDenied, match="more permissive"):
        accounts.update_key(narrow, owner.key.id, {"name": "hijacked"})
    with pytest.raises(PermissionDenied, match="more permissive"):
        accounts.revoke_key(narrow, owner.key.id)  # a leaked restricted key cannot lock its owner out


def test_a_restricted_key_keeps_its_own_restrictions(accounts):
    who = principal(accounts, model_pool=["b", "a"], rpm_limit=10, expires_at=LATER)
    for change in ({"rpm_limit": 5}, {"model_pool": ["a"]}, {"expires_at": SOON}, {"rpm_limit": None}):
        with pytest.raises(PermissionDenied):
            accounts.update_key(who, who.key.id, change)  # not even to narrow them
    same = {"model_pool": ["a", "b"], "rpm_limit": 10, "expires_at": LATER, "name": "mine", "optimize_mode": "cost"}
    assert accounts.update_key(who, who.key.id, same).name == "mine"  # resending the current values is no change
    assert accounts.revoke_key(who, who.key.id).revoked_at is not None  # it may revoke itself


def test_accounts_are_created_only_by_unrestricted_keys_and_keys_managed_within_the_account(accounts):
    restricted = principal(accounts, rpm_limit=5)
    with pytest.raises(PermissionDenied):
        accounts.create_account("sneaky", by=restricted)
    outsider = principal(accounts)
    with pytest.raises(NotFound):  # another account's key is not found for a non-admin
        accounts.update_key(outsider, restricted.key.id, {"name": "x"})
    with pytest.raises(NotFound):
        accounts.revoke_key(outsider, restricted.key.id)
    admin = accounts.authenticate(ADMIN_KEY)
    assert accounts.update_key(admin, restricted.key.id, {"rpm_limit": None}).rpm_limit is None  # any account's
    accounts.revoke_key(admin, restricted.key.id)
    with pytest.raises(Conflict):
        accounts.update_key(admin, restricted.key.id, {"name": "too late"})
    assert accounts.create_account("by-admin", by=admin)[0].name == "by-admin"


def test_principal_of_reads_a_stored_key_without_authenticating_it(accounts):
    who = principal(accounts)
    assert accounts.principal_of(who.account.id, who.key.id).key.id == who.key.id
    assert accounts.principal_of("acct_other", who.key.id) is None
