"""Deployments over real HTTP: a stable ``@name`` served by its current target on every surface, switched
atomically, with its history, rollbacks, and isolation between accounts."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from tests.conftest import SMOL, new_account

DEMO = "demo-extractor"
MINILM = "outrider/gliner2-minilm-l6"
TEXT = "Anna Schmidt works for Netflix in Boston."
SCHEMA = {"entities": ["person", "company"]}


def put(client: httpx.Client, name: str, model_id: str, status: int | None = None, **extra) -> dict:
    response = client.put(f"/deployments/{name}", json={"model_id": model_id, **extra})
    if status is not None:
        assert response.status_code == status, response.text
    else:
        assert response.status_code in (200, 201), response.text
    return response.json()


def extract(client: httpx.Client, model_id: str) -> dict:
    response = client.post("/inference", json={"model_id": model_id, "text": TEXT, "schema": SCHEMA})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def owner(server, admin):
    key = new_account(admin, "deploy-owner")
    with server.client(key) as client:
        yield client, key


def test_create_switch_rollback_and_delete_keep_a_history(owner):
    client, _ = owner
    created = put(client, "lifecycle", DEMO, 201, note="first")
    assert created["model"] == "@lifecycle" and created["target"] == DEMO and created["version"] == 1
    [event] = created["history"]
    assert event["action"] == "create" and event["previous_target"] is None and event["note"] == "first"
    assert event["switched_by"].startswith("key ") and event["switched_by_id"].startswith("key_")
    assert put(client, "lifecycle", DEMO, 200)["version"] == 1  # the target it already has: no change
    switched = put(client, "@lifecycle", MINILM, 200)  # the name with its '@' is the same deployment
    assert switched["target"] == MINILM and switched["version"] == 2
    assert [(e["action"], e["target"], e["previous_target"]) for e in switched["history"]] == [
        ("switch", MINILM, DEMO),
        ("create", DEMO, None),
    ]
    put(client, "lifecycle", SMOL, 200)
    # Rollbacks walk back through the switches, one each, and say so in the history.
    back = client.post("/deployments/lifecycle/rollback", json={"note": "bad F1"}).json()
    assert back["target"] == MINILM and back["history"][0]["action"] == "rollback"
    assert back["history"][0]["previous_target"] == SMOL and back["history"][0]["note"] == "bad F1"
    assert client.post("/deployments/@lifecycle/rollback").json()["target"] == DEMO
    nothing = client.post("/deployments/lifecycle/rollback")
    assert nothing.status_code == 409 and "roll back" in nothing.json()["detail"]
    got = client.get("/deployments/lifecycle").json()
    assert got["target"] == DEMO and got["version"] == 5 and len(got["history"]) == 5
    assert "lifecycle" in [d["name"] for d in client.get("/deployments").json()["data"]]
    deleted = client.delete("/deployments/lifecycle")
    assert deleted.status_code == 200 and deleted.json() == {
        "name": "lifecycle",
        "model": "@lifecycle",
        "deleted": True,
    }
    assert client.get("/deployments/lifecycle").status_code == 404
    assert client.delete("/deployments/lifecycle").status_code == 404
    gone = client.post("/inference", json={"model_id": "@lifecycle", "text": TEXT, "schema": SCHEMA})
    assert gone.status_code == 404 and "@lifecycle" in gone.json()["detail"]


def test_a_switch_takes_effect_on_the_next_call_and_records_keep_both_names(owner):
    client, _ = owner
    put(client, "ner", DEMO)
    first = extract(client, "@ner")
    assert first["model_id"] == "@ner" and first["model_used"] == DEMO
    assert first["result"] == extract(client, DEMO)["result"]
    put(client, "ner", MINILM)
    second = extract(client, "@ner")
    assert second["model_used"] == MINILM
    for body, used in ((first, DEMO), (second, MINILM)):
        record = client.get(f"/inferences/{body['inference_id']}").json()
        assert record["model_id"] == "@ner" and record["model_used"] == used
    assert client.get("/inferences", params={"model_id": "@ner"}).json()["total"] == 2
    usage = [u for u in client.get("/usage").json()["data"] if u["model_id"] == "@ner"]
    assert sorted(u["model_used"] for u in usage) == sorted([DEMO, MINILM])
    put(client, "ner", DEMO)


def test_the_openai_surface_serves_a_deployment_and_lists_it(server, owner):
    client, key = owner
    put(client, "chat", SMOL)
    put(client, "ner", DEMO)
    sdk = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
    reply = sdk.chat.completions.create(model="@chat", messages=[{"role": "user", "content": "Hi"}], max_tokens=2)
    assert reply.model == "@chat" and reply.usage.completion_tokens >= 1
    extracted = sdk.chat.completions.create(
        model="@ner", messages=[{"role": "user", "content": TEXT}], extra_body={"schema": SCHEMA}
    )
    assert "Anna Schmidt" in extracted.choices[0].message.content
    listed = {m.id: m for m in sdk.models.list().data}
    assert "@chat" in listed and "@ner" in listed
    assert sdk.models.retrieve("@chat").id == SMOL  # the model it serves now
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.chat.completions.create(model="@nope", messages=[{"role": "user", "content": "Hi"}], max_tokens=2)
    assert missing.value.body["code"] == "model_not_found" and missing.value.body["param"] == "model"
    with pytest.raises(openai.UnprocessableEntityError) as wrong_family:  # an encoder behind the name: the hint says so
        sdk.chat.completions.create(model="@ner", messages=[{"role": "user", "content": "Hi"}], max_tokens=2)
    assert "encoder" in wrong_family.value.body["message"]
    records = client.get("/inferences", params={"model_id": "@chat"}).json()["inferences"]
    assert records and all(r["model_used"] == SMOL and r["surface"] == "openai" for r in records)


def test_the_anthropic_surface_serves_a_deployment(server, owner):
    client, key = owner
    put(client, "chat", SMOL)
    sdk = anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0)
    message = sdk.messages.create(model="@chat", max_tokens=2, messages=[{"role": "user", "content": "Hi"}])
    assert message.model == "@chat" and message.usage.output_tokens >= 1
    with pytest.raises(anthropic.NotFoundError) as missing:
        sdk.messages.create(model="@nope", max_tokens=2, messages=[{"role": "user", "content": "Hi"}])
    assert missing.value.body["type"] == "error" and missing.value.body["error"]["type"] == "not_found_error"
    records = client.get("/inferences", params={"model_id": "@chat"}).json()["inferences"]
    assert any(r["surface"] == "anthropic" and r["model_used"] == SMOL for r in records)


def test_another_accounts_deployment_is_a_404_and_names_are_per_account(server, admin, owner):
    client, _ = owner
    put(client, "private", DEMO)
    with server.client(new_account(admin, "deploy-other")) as other:
        for response in (
            other.get("/deployments/private"),
            other.post("/deployments/private/rollback"),
            other.delete("/deployments/private"),
            other.post("/inference", json={"model_id": "@private", "text": TEXT, "schema": SCHEMA}),
            other.get("/models/@private"),
        ):
            assert response.status_code == 404, response.text
        assert other.get("/deployments").json()["data"] == []
        # The same name in another account is that account's own deployment, not a shadow of the first.
        assert put(other, "private", MINILM, 201)["target"] == MINILM
        assert extract(other, "@private")["model_used"] == MINILM
    assert extract(client, "@private")["model_used"] == DEMO
    assert client.get("/deployments/private").json()["version"] == 1


def test_bad_names_and_targets_are_refused(server, owner):
    client, _ = owner
    for name in ("Upper", "-dash", "a" * 64, "sp ace", "x%2F..", "@@twice"):
        response = client.put(f"/deployments/{name}", json={"model_id": DEMO})
        assert response.status_code in (404, 422), (name, response.text)
        if response.status_code == 422:
            assert "deployment name" in response.json()["detail"]
    put(client, "target", DEMO)
    chained = client.put("/deployments/chained", json={"model_id": "@target"})
    assert chained.status_code == 422 and "another deployment" in chained.json()["detail"]
    unknown = client.put("/deployments/chained", json={"model_id": "no-such-model"})
    assert unknown.status_code == 404 and "no-such-model" in unknown.json()["detail"]
    assert client.put("/deployments/chained", json={"model_id": "ft_0123456789abcdef01234567"}).status_code == 404
    assert client.put("/deployments/chained", json={"model_id": DEMO, "extra": 1}).status_code == 422
    assert client.put("/deployments/chained", json={"model_id": DEMO, "note": "x" * 2001}).status_code == 422
    assert client.put("/deployments/chained", json={"model_id": ""}).status_code == 422
    assert (
        client.put(
            "/deployments/chained", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    assert client.get("/deployments/chained").status_code == 404
    # As a training base_model, a name that is no deployment of this account is refused like an unknown id.
    job = {"model_name": "m", "base_model": "@chained", "datasets": [{"name": "none"}]}
    refused = client.post("/felix/training-jobs", json=job)
    assert refused.status_code == 422 and "unknown deployment '@chained'" in refused.json()["detail"]


def test_a_pooled_key_points_deployments_only_at_models_in_its_pool(server, owner):
    client, _ = owner
    pooled = client.post("/keys", json={"name": "pooled", "model_pool": [DEMO]}).json()["key"]
    with server.client(pooled) as restricted:
        outside = restricted.put("/deployments/pooled", json={"model_id": MINILM})
        assert outside.status_code == 403 and "pool" in outside.json()["detail"]
        assert put(restricted, "pooled", DEMO, 201)["history"][0]["switched_by"].startswith("key pooled")
        assert extract(restricted, "@pooled")["model_used"] == DEMO
    # Switched (by an unrestricted key) to a model outside the pool: the pooled key may no longer call it.
    put(client, "pooled", MINILM)
    with server.client(pooled) as restricted:
        refused = restricted.post("/inference", json={"model_id": "@pooled", "text": TEXT, "schema": SCHEMA})
        assert refused.status_code == 403
