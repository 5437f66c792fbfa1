"""API keys over real HTTP: header styles, prefixes, hashing at rest, revocation, expiry, isolation."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from outrider.storage.tables import ApiKeyRow
from tests.conftest import ADMIN_KEY, new_account


def test_all_three_header_styles_authenticate(server):
    for headers in ({"X-API-Key": ADMIN_KEY}, {"Authorization": f"Bearer {ADMIN_KEY}"}, {"x-api-key": ADMIN_KEY}):
        with server.client(None, headers=headers) as client:
            assert client.get("/me").status_code == 200


def test_missing_and_invalid_keys_are_401_in_the_native_envelope(server):
    with server.client(None) as client:
        response = client.get("/inferences")
        assert response.status_code == 401
        assert "missing API key" in response.json()["detail"]
    with server.client("ork_not_a_real_key_at_all_000000") as client:
        response = client.get("/inferences")
        assert response.status_code == 401 and response.json() == {"detail": "invalid API key"}


def test_keys_are_prefixed_shown_once_and_stored_only_as_hashes(server, admin):
    created = admin.post("/keys", json={"name": "ci"}).json()
    raw = created["key"]
    assert raw.startswith("ork_") and created["prefix"] == raw[:12]
    listed = admin.get("/keys").json()["keys"]
    assert all("key" not in k for k in listed)
    assert created["id"] in [k["id"] for k in listed]
    with server.services.db.session() as s:
        stored = s.scalar(select(ApiKeyRow).where(ApiKeyRow.id == created["id"]))
        assert stored.key_hash != raw and raw not in stored.key_hash and len(stored.key_hash) == 64


def test_a_revoked_key_is_403_afterwards(server, admin):
    created = admin.post("/keys", json={"name": "short-lived"}).json()
    with server.client(created["key"]) as client:
        assert client.get("/me").status_code == 200
        assert admin.delete(f"/keys/{created['id']}").status_code == 200
        response = client.get("/me")
        assert response.status_code == 403 and "revoked" in response.json()["detail"]


def test_an_expired_key_is_401(server, admin):
    # Keys cannot be made already expired (422): make one that expires in a moment, then wait.
    expires = datetime.now(UTC) + timedelta(seconds=2)
    created = admin.post("/keys", json={"name": "expired", "expires_at": expires.isoformat()})
    assert created.status_code == 201, created.text
    with server.client(created.json()["key"]) as client:
        assert client.get("/me").status_code == 200
        time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.2)
        response = client.get("/me")
        assert response.status_code == 401 and "expired" in response.json()["detail"]


def test_accounts_cannot_touch_each_others_keys_and_only_admins_create_accounts(server, admin):
    raw = new_account(admin, "key-isolation")
    with server.client(raw) as other:
        admin_key_id = admin.get("/keys").json()["keys"][0]["id"]
        assert other.delete(f"/keys/{admin_key_id}").status_code == 404
        assert all(k["id"] != admin_key_id for k in other.get("/keys").json()["keys"])
        assert other.post("/accounts", json={"name": "sneaky"}).status_code == 403


def test_patch_changes_a_keys_settings_and_only_its_owner_can(server, admin):
    created = admin.post("/keys", json={"name": "router", "model_pool": ["a"], "optimize_mode": "cost"}).json()
    changed = admin.patch(
        f"/keys/{created['id']}", json={"name": "router-2", "model_pool": ["b", "c"], "optimize_mode": "latency"}
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["name"], body["model_pool"], body["optimize_mode"]) == ("router-2", ["b", "c"], "latency")
    assert "key" not in body
    cleared = admin.patch(f"/keys/{created['id']}", json={"model_pool": None}).json()
    assert cleared["model_pool"] is None and cleared["name"] == "router-2"
    assert admin.patch(f"/keys/{created['id']}", json={"optimize_mode": "fastest"}).status_code == 422
    assert admin.patch(f"/keys/{created['id']}", json={"name": None}).status_code == 422
    with server.client(new_account(admin, "patch-other")) as other:
        assert other.patch(f"/keys/{created['id']}", json={"name": "mine"}).status_code == 404
    refused = admin.patch(f"/keys/{created['id']}", json={"expires_at": "2000-01-01T00:00:00Z"})
    assert refused.status_code == 422 and "expires_at" in refused.json()["detail"]
    probe = {"model_id": "outrider/gliner2-minilm-l6", "text": "hi", "schema": {"entities": ["person"]}}
    with server.client(created["key"]) as client:
        assert client.get("/me").status_code == 200
        assert admin.patch(f"/keys/{created['id']}", json={"model_pool": ["demo-extractor"]}).status_code == 200
        assert client.post("/inference", json=probe).status_code == 403  # the change applies to the next request
    admin.delete(f"/keys/{created['id']}")
    assert admin.patch(f"/keys/{created['id']}", json={"name": "zombie"}).status_code == 409


def test_a_key_with_a_model_pool_can_only_use_those_models(server, admin):
    import openai

    pooled = admin.post("/keys", json={"name": "pooled", "model_pool": ["demo-extractor"]}).json()["key"]
    with server.client(pooled) as client:
        body = {"model_id": "demo-extractor", "text": "David Kim works for Sony.", "schema": {"entities": ["person"]}}
        assert client.post("/inference", json=body).status_code == 200
        refused = client.post("/inference", json={**body, "model_id": "outrider/gliner2-minilm-l6"})
        assert refused.status_code == 403 and "model pool" in refused.json()["detail"]
    sdk = openai.OpenAI(base_url=f"{server.url}/v1", api_key=pooled, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        sdk.chat.completions.create(
            model="HuggingFaceTB/SmolLM2-135M-Instruct", messages=[{"role": "user", "content": "hi"}], max_tokens=1
        )
    assert caught.value.body["type"] == "permission_error"
