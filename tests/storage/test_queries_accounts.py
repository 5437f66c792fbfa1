"""Account and key queries against a real SQLite database."""

from datetime import UTC, datetime, timedelta

from outrider.storage.queries import accounts as q
from tests.databases import make_account


def test_accounts_are_created_counted_and_found_by_id_and_name(db):
    with db.session() as s:
        assert q.count_accounts(s) == 0
    admin = make_account(db, "root", is_admin=True, unlimited=True)
    team = make_account(db, "team")
    with db.session() as s:
        assert q.count_accounts(s) == 2
        assert q.get_account(s, admin.id) == admin and admin.is_admin and admin.unlimited_credits
        assert q.get_account_by_name(s, "team") == team and not team.is_admin and not team.unlimited_credits
        assert q.get_account(s, "acct_missing") is None and q.get_account_by_name(s, "nobody") is None
        assert {a.name for a in q.list_accounts(s)} == {"root", "team"}


def test_a_key_is_found_by_its_hash_with_its_account_and_never_across_accounts(db):
    mine, other = make_account(db, "mine"), make_account(db, "other")
    with db.session() as s:
        key = q.create_key(s, account_id=mine.id, name="ci", prefix="ork_abc", key_hash="h1", model_pool=["m"])
        q.create_key(s, account_id=other.id, name="theirs", prefix="ork_def", key_hash="h2")
    with db.session() as s:
        found_key, found_account, found_user = q.find_key_by_hash(s, "h1")
        assert found_key == key and found_account == mine and found_user is None  # the account's own key
        assert found_key.model_pool == ["m"] and found_key.optimize_mode == "balanced"
        assert q.find_key_by_hash(s, "unknown") is None
        assert q.get_key(s, key.id) == key
        assert q.get_key(s, key.id, account_id=other.id) is None  # another account's key is not found
        assert q.get_key_with_account(s, key.id, account_id=mine.id) == (key, mine, None)
        assert q.get_key_with_account(s, key.id, account_id=other.id) is None
        assert [k.name for k in q.list_keys(s, mine.id)] == ["ci"]
        assert {k.name for k in q.list_keys(s)} == {"ci", "theirs"}  # every account's (admin listings)


def test_keys_are_updated_touched_and_revoked_once(db):
    account = make_account(db, "owner")
    with db.session() as s:
        key = q.create_key(s, account_id=account.id, name="k", prefix="ork_k", key_hash="hk")
    expires = datetime.now(UTC) + timedelta(days=1)
    with db.session() as s:
        updated = q.update_key(s, key.id, {"name": "renamed", "rpm_limit": 10, "expires_at": expires})
        assert (updated.name, updated.rpm_limit, updated.expires_at) == ("renamed", 10, expires)
        assert q.update_key(s, "key_missing", {"name": "x"}) is None
        q.touch_key(s, key.id, expires - timedelta(hours=1))
    with db.session() as s:
        assert q.get_key(s, key.id).last_used_at == expires - timedelta(hours=1)
        first = q.revoke_key(s, key.id)
    with db.session() as s:
        again = q.revoke_key(s, key.id)
        assert first.revoked_at is not None and again.revoked_at == first.revoked_at  # the first time stands
        assert q.revoke_key(s, "key_missing") is None
