"""Users over real HTTP: owners manage them, nobody widens itself, accounts stay apart, an account keeps an
owner, disabling and password resets end sessions and keys, and malformed values are refused."""

from contextlib import closing

import httpx
import pytest

from tests.conftest import new_account
from tests.sessions import PASSWORD, add_user, sign_in, unique


@pytest.fixture(scope="module")
def accounts(server, admin):
    """Two accounts, each with a signed-in owner."""
    made = {}
    for name in ("users-a", "users-b"):
        with server.client(new_account(admin, name)) as key_client:
            account_id = key_client.get("/me").json()["id"]
        owner = add_user(admin, "owner", account_id)
        made[name] = {"id": account_id, "owner": owner, "browser": sign_in(server.url, owner["username"])}
    yield made
    for entry in made.values():
        entry["browser"].close()


def test_an_owner_adds_lists_and_changes_users(server, accounts):
    owner = accounts["users-a"]["browser"]
    created = owner.post("/users", json={"username": unique("Gen"), "email": "Gen@Example.org", "role": "viewer"})
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["account_id"] == accounts["users-a"]["id"] and user["role"] == "viewer"
    assert user["username"] == user["username"].lower() and user["email"] == "gen@example.org"
    assert len(user["password"]) >= 20  # generated, shown once
    listed = owner.get("/users").json()["users"]
    assert user["id"] in [u["id"] for u in listed] and all("password" not in u for u in listed)
    assert {u["account_id"] for u in listed} == {accounts["users-a"]["id"]}
    with closing(sign_in(server.url, "GEN@example.org", user["password"])) as browser:
        assert browser.get("/auth/me").json()["role"] == "viewer"
        changed = owner.patch(f"/users/{user['id']}", json={"role": "member", "email": None})
        assert changed.status_code == 200 and changed.json()["role"] == "member" and changed.json()["email"] is None
        assert browser.get("/auth/me").status_code == 401  # a new role: signed in again
    reset = owner.patch(f"/users/{user['id']}", json={"password": "a brand new one"})
    assert reset.status_code == 200
    with closing(sign_in(server.url, user["username"], "a brand new one")) as browser:
        assert browser.get("/auth/me").json()["role"] == "member"


def test_names_are_unique_everywhere_and_values_are_checked(accounts):
    owner = accounts["users-a"]["browser"]
    taken = accounts["users-b"]["owner"]["username"]
    assert owner.post("/users", json={"username": taken.upper()}).status_code == 409
    first = owner.post("/users", json={"username": unique("mail"), "email": "same@example.org", "password": PASSWORD})
    assert first.status_code == 201
    assert owner.post("/users", json={"username": unique("mail"), "email": "SAME@example.org"}).status_code == 409
    assert owner.post("/users", json={"username": "same@example.org"}).status_code == 422  # not a username
    bad = [
        {"username": "../../etc"},
        {"username": ""},
        {"username": "x" * 101},
        {"username": "ünïcode"},
        {"username": "a\u0000b"},
        {"username": unique("u"), "role": "admin"},
        {"username": unique("u"), "password": "short"},
        {"username": unique("u"), "password": "x" * 1025},
        {"username": unique("u"), "password": "tab\there-123"},
        {"username": unique("u"), "email": "no-at-sign"},
        {"username": unique("u"), "email": "a@b@c"},
        {"username": unique("u"), "is_admin": True},
        {"username": unique("u"), "account_id": 5},
    ]
    for body in bad:
        assert owner.post("/users", json=body).status_code == 422, body
    user_id = first.json()["id"]
    for body in ({"role": "root"}, {"disabled": "yes"}, {"password": "1234"}, {"account_id": "x"}, {"username": "x"}):
        assert owner.patch(f"/users/{user_id}", json=body).status_code == 422, body
    huge = owner.post("/users", content=b'{"username": "' + b"a" * 2_000_000 + b'"}')
    assert huge.status_code == 422


def test_members_and_viewers_cannot_manage_users_or_widen_themselves(server, accounts):
    owner = accounts["users-a"]["browser"]
    for role in ("member", "viewer"):
        user = add_user(owner, role)
        with closing(sign_in(server.url, user["username"])) as browser:
            assert browser.get("/users").status_code == 403
            assert browser.post("/users", json={"username": unique("x"), "role": "owner"}).status_code == 403
            widened = browser.patch(f"/users/{user['id']}", json={"role": "owner"})
            assert widened.status_code == 403
            assert browser.patch(f"/users/{user['id']}", json={"disabled": False}).status_code == 403
            other = accounts["users-a"]["owner"]["id"]
            assert browser.patch(f"/users/{other}", json={"password": "take over!"}).status_code == 403
            assert browser.get("/auth/me").json()["role"] == role


def test_accounts_stay_apart_and_admins_manage_any(admin, accounts):
    a, b = accounts["users-a"], accounts["users-b"]
    a_owner = a["browser"]
    assert a_owner.patch(f"/users/{b['owner']['id']}", json={"role": "viewer"}).status_code == 404
    assert a_owner.get("/users", params={"account_id": b["id"]}).status_code == 404
    assert a_owner.post("/users", json={"username": unique("x"), "account_id": b["id"]}).status_code == 404
    assert a_owner.patch("/users/user_does_not_exist", json={"role": "viewer"}).status_code == 404
    listed = admin.get("/users", params={"account_id": b["id"]})
    assert listed.status_code == 200 and [u["id"] for u in listed.json()["users"]] == [b["owner"]["id"]]
    assert admin.get("/users", params={"account_id": "acct_nope"}).status_code == 404
    made = admin.post("/users", json={"username": unique("by-admin"), "account_id": b["id"], "role": "viewer"})
    assert made.status_code == 201 and made.json()["account_id"] == b["id"]


def test_an_account_keeps_an_enabled_owner(server, accounts):
    b = accounts["users-b"]
    owner_id = b["owner"]["id"]
    for change in ({"role": "member"}, {"disabled": True}):
        response = b["browser"].patch(f"/users/{owner_id}", json=change)
        assert response.status_code == 409 and "owner" in response.json()["detail"]
    second = add_user(b["browser"], "owner")
    assert b["browser"].patch(f"/users/{second['id']}", json={"role": "member"}).status_code == 200
    assert b["browser"].patch(f"/users/{owner_id}", json={"role": "viewer"}).status_code == 409


def test_disabling_a_user_ends_its_sessions_and_stops_its_keys(server, accounts):
    owner = accounts["users-a"]["browser"]
    user = add_user(owner, "member")
    browser = sign_in(server.url, user["username"])
    key = browser.post("/keys", json={"name": "soon disabled"}).json()["key"]
    with server.client(key) as key_client:
        assert key_client.get("/credits").status_code == 200
        assert owner.patch(f"/users/{user['id']}", json={"disabled": True}).json()["disabled"] is True
        refused = key_client.get("/credits")
        assert refused.status_code == 403 and "disabled" in refused.json()["detail"]
        assert browser.get("/auth/me").status_code == 401
        with httpx.Client(base_url=server.url) as client:
            login = client.post("/auth/login", json={"username": user["username"], "password": PASSWORD})
            assert login.status_code == 401
        assert owner.patch(f"/users/{user['id']}", json={"disabled": False}).status_code == 200
        assert key_client.get("/credits").status_code == 200
    browser.close()


def test_a_key_of_no_user_cannot_change_a_password_it_does_not_have(server, admin):
    with server.client(new_account(admin, "users-c")) as key_client:
        response = key_client.post("/auth/password", json={"current_password": "whatever1", "new_password": PASSWORD})
        assert response.status_code == 422 and "no user" in response.json()["detail"]
        assert (
            key_client.get("/auth/me").json()["user"] is None and key_client.get("/auth/me").json()["role"] == "owner"
        )
