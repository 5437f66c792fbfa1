"""User queries against a real SQLite database: logins by name or email, versions, owners, key owners."""

from outrider.storage.queries import accounts as accounts_q
from outrider.storage.queries import now
from outrider.storage.queries import users as q
from tests.databases import make_account


def test_a_user_is_found_by_username_or_email_with_its_hash_only_there(db):
    team = make_account(db, "team")
    with db.session() as s:
        user = q.create_user(s, account_id=team.id, username="ada", email="ada@x.org", role="owner", password_hash="h")
    with db.session() as s:
        assert q.find_login(s, "ada") == (user, "h") and q.find_login(s, "ada@x.org") == (user, "h")
        assert q.find_login(s, "nobody") is None
        assert q.password_hash_of(s, user.id) == "h"
        assert q.taken(s, username="ada") == "username" and q.taken(s, email="ada") == "email"
        assert q.taken(s, username="ada@x.org") == "username"  # someone's email cannot be another's username
        assert q.taken(s, username="bob", email="bob@x.org") is None
        assert not hasattr(user, "password_hash")  # records never carry the hash


def test_sign_out_password_changes_and_disabling_move_the_session_version(db):
    team = make_account(db, "team")
    with db.session() as s:
        user = q.create_user(s, account_id=team.id, username="ada", email=None, role="member", password_hash="h")
        assert user.session_version == 0
        assert q.end_sessions(s, user.id).session_version == 1
        changed = q.set_password(s, user.id, "h2", now())
        assert changed.session_version == 2 and q.password_hash_of(s, user.id) == "h2"
        assert q.update_user(s, user.id, {"role": "viewer"}).session_version == 2  # the service ends those
        assert q.update_user(s, user.id, {"disabled": True}).session_version == 3
        assert q.end_sessions(s, "user_missing") is None and q.get_user(s, "user_missing") is None


def test_active_owners_are_counted_per_account_and_keys_carry_their_user(db):
    team, other = make_account(db, "team"), make_account(db, "other")
    with db.session() as s:
        owner = q.create_user(s, account_id=team.id, username="o1", email=None, role="owner", password_hash="h")
        q.create_user(s, account_id=team.id, username="o2", email=None, role="owner", password_hash="h")
        q.create_user(s, account_id=other.id, username="o3", email=None, role="owner", password_hash="h")
        assert q.count_active_owners(s, team.id) == 2
        q.update_user(s, owner.id, {"disabled": True})
        assert q.count_active_owners(s, team.id) == 1
        assert [u.username for u in q.list_users(s, team.id)] == ["o1", "o2"] and len(q.list_users(s)) == 3
        key = accounts_q.create_key(s, account_id=team.id, name="k", prefix="p", key_hash="kh", user_id=owner.id)
    with db.session() as s:
        found_key, account, user = accounts_q.find_key_by_hash(s, "kh")
        assert found_key == key and found_key.user_id == owner.id and account == team
        assert user.id == owner.id and user.disabled
        assert accounts_q.list_keys(s, team.id, user_id=owner.id) == [found_key]
        assert accounts_q.list_keys(s, team.id, user_id="user_other") == []
