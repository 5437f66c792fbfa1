"""What a key may do to keys, over real HTTP: a key never grants more than it has.

A restricted key (a model pool, a per-key limit or an expiry) cannot change its own restrictions, and the
keys it makes, changes or revokes are at most as permissive as itself. Also the validation limits of key
and account fields: bounded per-key limits, no expiry in the past, safe account names.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import httpx
import openai
import pytest

from tests.conftest import SMOL, new_account

MINILM = "outrider/gliner2-minilm-l6"


def key(client: httpx.Client, **body) -> dict:
    created = client.post("/keys", json={"name": "k", **body})
    assert created.status_code == 201, created.text
    return created.json()


def refused(response: httpx.Response, status: int, field: str) -> None:
    """``response`` has ``status`` and names ``field`` in its (native) error."""
    assert response.status_code == status, response.text
    assert field in str(response.json()["detail"]), response.text


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


@pytest.fixture(scope="module")
def owner(server, admin):
    """An account's first (unrestricted) key."""
    with server.client(new_account(admin, "scope-owner")) as client:
        yield client


def test_a_pooled_key_limited_to_one_request_a_minute_cannot_lift_its_restrictions(server, owner):
    # The scenario. With rpm_limit 1 only one rate-limited call fits in the minute, so the key
    # management calls (not rate limited) come first and the one chat call last.
    restricted = key(owner, name="pooled", model_pool=[MINILM], rpm_limit=1)
    with server.client(restricted["key"]) as client:
        lifted = client.patch(f"/keys/{restricted['id']}", json={"model_pool": None, "rpm_limit": None})
        refused(lifted, 403, "model_pool")
        assert lifted.json()["detail"].startswith("model_pool")
        refused(client.patch(f"/keys/{restricted['id']}", json={"rpm_limit": None}), 403, "rpm_limit")
        refused(client.post("/keys", json={"name": "wide"}), 403, "model_pool")
        refused(client.post("/keys", json={"name": "no-limit", "model_pool": [MINILM]}), 403, "rpm_limit")
        child = client.post("/keys", json={"name": "child", "model_pool": [MINILM], "rpm_limit": 1})
        assert child.status_code == 201, child.text
        assert (child.json()["model_pool"], child.json()["rpm_limit"]) == ([MINILM], 1)
        mine = next(k for k in client.get("/keys").json()["keys"] if k["id"] == restricted["id"])
        assert (mine["model_pool"], mine["rpm_limit"]) == ([MINILM], 1)
    sdk = openai.OpenAI(base_url=f"{server.url}/v1", api_key=restricted["key"], max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        sdk.chat.completions.create(model=SMOL, messages=[{"role": "user", "content": "hi"}], max_tokens=1)


def test_keys_made_by_a_restricted_key_are_at_most_as_permissive_as_it(server, owner):
    expires = later(hours=1)
    limits = {"model_pool": [MINILM, "demo-extractor"], "rpm_limit": 10, "tpm_limit": 1000, "expires_at": expires}
    restricted = key(owner, **limits)
    with server.client(restricted["key"]) as client:
        for field, value in (
            ("model_pool", None),
            ("model_pool", [MINILM, SMOL]),
            ("rpm_limit", None),
            ("rpm_limit", 20),
            ("tpm_limit", None),
            ("tpm_limit", 1001),
            ("expires_at", None),
            ("expires_at", later(hours=2)),
        ):
            refused(client.post("/keys", json={"name": "child", **limits, field: value}), 403, field)
        narrower = {"model_pool": [MINILM], "rpm_limit": 5, "tpm_limit": 1000, "expires_at": later(minutes=30)}
        child = client.post("/keys", json={"name": "child", "optimize_mode": "cost", **narrower})
        assert child.status_code == 201, child.text
        assert child.json()["optimize_mode"] == "cost" and child.json()["rpm_limit"] == 5


def test_a_restricted_key_can_rename_itself_but_not_change_its_restrictions(server, owner):
    restricted = key(owner, model_pool=[MINILM], rpm_limit=100)
    with server.client(restricted["key"]) as client:
        path = f"/keys/{restricted['id']}"
        renamed = client.patch(path, json={"name": "renamed", "optimize_mode": "latency"})
        assert renamed.status_code == 200, renamed.text
        assert (renamed.json()["name"], renamed.json()["optimize_mode"]) == ("renamed", "latency")
        refused(client.patch(path, json={"model_pool": []}), 403, "model_pool")  # even narrower: not its call
        refused(client.patch(path, json={"rpm_limit": 50}), 403, "rpm_limit")
        refused(client.patch(path, json={"tpm_limit": 50}), 403, "tpm_limit")
        refused(client.patch(path, json={"expires_at": later(hours=1)}), 403, "expires_at")
        # Sending the current values back (a client that PATCHes what it read) is not a change.
        assert client.patch(path, json={"model_pool": [MINILM], "rpm_limit": 100}).status_code == 200
    # The account's unrestricted key manages it fully, lifting restrictions included.
    lifted = owner.patch(f"/keys/{restricted['id']}", json={"model_pool": None, "rpm_limit": None})
    assert lifted.status_code == 200 and lifted.json()["model_pool"] is None


def test_a_restricted_key_changes_and_revokes_only_keys_within_itself(server, owner):
    restricted = key(owner, model_pool=[MINILM], rpm_limit=100)
    sibling = key(owner, name="sibling")  # unrestricted, made by the owner
    with server.client(restricted["key"]) as client:
        child = key(client, name="child", model_pool=[MINILM], rpm_limit=50)
        refused(client.patch(f"/keys/{child['id']}", json={"rpm_limit": 200}), 403, "rpm_limit")
        refused(client.patch(f"/keys/{child['id']}", json={"model_pool": None}), 403, "model_pool")
        narrowed = client.patch(f"/keys/{child['id']}", json={"rpm_limit": 5, "model_pool": []})
        assert narrowed.status_code == 200 and narrowed.json()["rpm_limit"] == 5
        # A wider key is out of reach: not even its name, and it cannot be revoked (no locking the owner out).
        refused(client.patch(f"/keys/{sibling['id']}", json={"name": "mine"}), 403, "model_pool")
        refused(client.delete(f"/keys/{sibling['id']}"), 403, "model_pool")
        assert client.delete(f"/keys/{child['id']}").status_code == 200
        assert client.delete(f"/keys/{restricted['id']}").status_code == 200  # itself
        assert client.get("/me").status_code == 403
    with server.client(sibling["key"]) as client:
        assert client.get("/me").status_code == 200


def test_a_restricted_admin_key_cannot_create_accounts(server, admin):
    restricted = key(admin, name="pooled-admin", model_pool=["demo-extractor"])
    with server.client(restricted["key"]) as client:
        refused(client.post("/accounts", json={"name": "minted-by-pooled"}), 403, "model_pool")
    assert "minted-by-pooled" not in {a["name"] for a in admin.get("/accounts").json()["accounts"]}
    admin.delete(f"/keys/{restricted['id']}")


def test_per_key_limits_are_bounded(owner):
    made = key(owner, rpm_limit=10**9, tpm_limit=10**12)
    for field, most in (("rpm_limit", 10**9), ("tpm_limit", 10**12)):
        for value in (most + 1, 10**20):
            refused(owner.post("/keys", json={"name": "huge", field: value}), 422, field)
            refused(owner.patch(f"/keys/{made['id']}", json={field: value}), 422, field)
    stored = next(k for k in owner.get("/keys").json()["keys"] if k["id"] == made["id"])
    assert (stored["rpm_limit"], stored["tpm_limit"]) == (10**9, 10**12)
    refused(owner.post("/keys", json={"name": "wide", "model_pool": [f"m{i}" for i in range(201)]}), 422, "model_pool")
    refused(owner.patch(f"/keys/{made['id']}", json={"model_pool": ["x" * 301]}), 422, "model_pool")


def test_a_key_cannot_be_made_or_set_to_expire_in_the_past(owner):
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    refused(owner.post("/keys", json={"name": "stale", "expires_at": past}), 422, "expires_at")
    beyond = "9999-12-31T23:59:59-01:00"  # after the last instant a datetime holds, once in UTC
    refused(owner.post("/keys", json={"name": "far", "expires_at": beyond}), 422, "expires_at")
    made = key(owner, expires_at=later(hours=1))
    refused(owner.patch(f"/keys/{made['id']}", json={"expires_at": "2000-01-01T00:00:00Z"}), 422, "expires_at")

    # A time with another zone is kept as the same instant; one without a zone is UTC.
    def stored_expiry() -> datetime:
        listed = next(k for k in owner.get("/keys").json()["keys"] if k["id"] == made["id"])
        return datetime.fromisoformat(listed["expires_at"])

    zoned = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    plus_two = zoned.astimezone(timezone(timedelta(hours=2))).isoformat()
    assert owner.patch(f"/keys/{made['id']}", json={"expires_at": plus_two}).status_code == 200
    assert stored_expiry() == zoned
    naive = (datetime.now(UTC) + timedelta(days=2)).replace(tzinfo=None, microsecond=0)
    assert owner.patch(f"/keys/{made['id']}", json={"expires_at": naive.isoformat()}).status_code == 200
    assert stored_expiry() == naive.replace(tzinfo=UTC)


@pytest.mark.parametrize("name", ["../../evil", "a/b", ".hidden", "-dash", "with space", "", "x" * 101, "tab\tname"])
def test_unsafe_account_names_are_refused(admin, name):
    refused(admin.post("/accounts", json={"name": name}), 422, "name")


def test_safe_account_names_and_key_labels_are_accepted(admin):
    assert admin.post("/accounts", json={"name": "Team_b.2-x"}).status_code == 201
    labelled = admin.post("/keys", json={"name": "Anna's laptop (2025)"})
    assert labelled.status_code == 201, labelled.text
    admin.delete(f"/keys/{labelled.json()['id']}")
    for bad in ("line\nbreak", "nul\u0000"):
        refused(admin.post("/keys", json={"name": bad}), 422, "name")
        refused(admin.patch(f"/keys/{labelled.json()['id']}", json={"name": bad}), 422, "name")
