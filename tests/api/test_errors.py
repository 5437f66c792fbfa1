"""Every native error status, in the native envelope, over real HTTP."""

from fastapi import FastAPI
from fastapi.testclient import TestClient

from outrider.api.errors import install_error_handlers

ENCODER = "outrider/gliner2-minilm-l6"


def test_unknown_model_is_404(admin):
    response = admin.post("/inference", json={"model_id": "no/such-model", "text": "hi", "schema": {"entities": ["a"]}})
    assert response.status_code == 404
    assert "no/such-model" in response.json()["detail"]


def test_invalid_bodies_are_422_naming_the_field(admin):
    cases = [
        ({"text": "hi", "schema": {"entities": ["a"]}}, "model_id"),
        ({"model_id": ENCODER, "text": "hi", "schema": {"entities": ["a"]}, "threshold": 1.5}, "threshold"),
        ({"model_id": ENCODER, "text": "hi"}, "schema"),
        ({"model_id": ENCODER, "schema": {"entities": ["a"]}}, "text"),
        ({"model_id": ENCODER, "text": "hi", "schema": {"entities": ["a"]}, "surprise": 1}, "surprise"),
    ]
    for body, field in cases:
        response = admin.post("/inference", json=body)
        assert response.status_code == 422, body
        assert field in response.text


def test_empty_text_malformed_schema_and_oversized_input_are_422(admin, server):
    base = {"model_id": ENCODER, "schema": {"entities": ["a"]}}
    for text, needle in (("", "empty"), ("   ", "empty"), ([], "empty"), (["ok", ""], "text[1]")):
        response = admin.post("/inference", json={**base, "text": text})
        assert response.status_code == 422 and needle in response.json()["detail"], text
    for schema in ({"entities": []}, {"entities": "person"}, {}, {"entities": [{"name": "a", "threshold": 2}]}):
        response = admin.post("/inference", json={"model_id": ENCODER, "text": "hi", "schema": schema})
        assert response.status_code == 422 and "schema" in response.json()["detail"], schema
    too_long = "x" * (server.settings.max_text_chars + 1)
    response = admin.post("/inference", json={**base, "text": too_long})
    assert response.status_code == 422 and "characters" in response.json()["detail"]
    too_many = ["a"] * (server.settings.max_batch_texts + 1)
    response = admin.post("/inference", json={**base, "text": too_many})
    assert response.status_code == 422 and "at most" in response.json()["detail"]


def test_wrong_model_family_is_422(admin):
    response = admin.post(
        "/inference", json={"model_id": ENCODER, "task": "generate", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert response.status_code == 422 and "encoder" in response.json()["detail"]


def test_bodies_over_the_size_limit_are_413(admin, server):
    big = "x" * (server.settings.max_request_bytes + 10)
    response = admin.post("/inference", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "larger than" in response.json()["detail"]


def test_unavailable_hub_model_is_503_quickly(admin):
    response = admin.post(
        "/inference", json={"model_id": "fastino/gliner2-base-v1", "text": "hi", "schema": {"entities": ["a"]}}
    )
    assert response.status_code == 503 and "offline" in response.json()["detail"]


def test_unexpected_errors_are_a_plain_500_without_a_stack_trace():
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom():
        raise RuntimeError("secret internals at /srv/app.py line 12")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert "Traceback" not in response.text and "secret" not in response.text


class ExplodingEncoder:
    """A test double whose forward pass always fails, to drive the 502 path of a real server."""

    def prepare(self, schema):
        return type("Prepared", (), {"entities": ["a"], "classifications": [], "structures": [], "relations": []})()

    def extract(self, texts, prepared, threshold):
        raise RuntimeError("CUDA error: device-side assert at /secret/path.py")

    def count_tokens(self, texts):
        return [1] * len(texts)


def test_a_model_failing_while_serving_is_502_recorded_and_the_server_keeps_serving(server, admin):
    from outrider.backends.base import ModelSpec

    server.services.registry.add(
        ModelSpec(id="test/exploding", kind="encoder", source="test", description="", load=ExplodingEncoder)
    )
    response = admin.post(
        "/inference", json={"model_id": "test/exploding", "text": "hi", "schema": {"entities": ["a"]}}
    )
    assert response.status_code == 502
    assert "failed during extraction" in response.json()["detail"] and "secret" not in response.text
    failed = admin.get("/inferences", params={"model_id": "test/exploding", "status": "error"}).json()
    assert failed["total"] == 1 and failed["inferences"][0]["error_type"] == "backend_error"
    assert admin.get("/health").status_code == 200


def test_model_health_warms_models_and_explains_unavailable_ones(server):
    import time

    with server.client() as client:
        hub = client.get("/models/fastino/gliner2-base-v1/health").json()
        assert hub["status"] == "unavailable" and "offline" in hub["reason"]
        assert client.get("/models/no/such/health").status_code == 404
        deadline = time.time() + 120
        statuses = set()
        while time.time() < deadline:
            status = client.get("/models/outrider/gliner2-minilm-l6/health").json()["status"]
            statuses.add(status)
            if status == "ready":
                break
            time.sleep(0.2)
        assert status == "ready" and statuses <= {"loading", "ready"}
