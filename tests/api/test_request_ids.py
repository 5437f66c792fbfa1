"""Request ids over real HTTP: a sane X-Request-ID is echoed, a missing or invalid one replaced by a generated
id, on every response (errors, the size limit's 413, streams); and `outrider serve` with JSON logs writes
one JSON object per line, its access log carrying each request's id."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import ADMIN_KEY, SMOL, free_port

GENERATED = re.compile(r"[0-9a-f]{32}")


def test_a_sane_request_id_is_echoed(server):
    for sent in ("abc-123", "0f8fad5b-d9cb-469f-a165-70867728950e", "trace:01HZX.y_z/AB+c=@d", "x" * 128):
        response = httpx.get(f"{server.url}/health", headers={"X-Request-ID": sent})
        assert response.headers["x-request-id"] == sent


def test_a_missing_request_id_is_generated_fresh_for_each_request(server):
    first, second = (httpx.get(f"{server.url}/health").headers["x-request-id"] for _ in range(2))
    assert GENERATED.fullmatch(first) and GENERATED.fullmatch(second) and first != second


@pytest.mark.parametrize(
    "sent",
    [b"has spaces", b"x" * 129, b'quote"d', b"semi;colon", b"caf\xc3\xa9", b"tab\there", b""],
    ids=["space", "too-long", "quote", "semicolon", "non-ascii", "tab", "empty"],
)
def test_an_invalid_request_id_is_replaced(server, sent):
    response = httpx.get(f"{server.url}/health", headers=[(b"X-Request-ID", sent)])
    assert response.status_code == 200
    assert GENERATED.fullmatch(response.headers["x-request-id"])
    assert len(response.headers.get_list("x-request-id")) == 1


def test_errors_carry_the_request_id(server, admin):
    headers = {"X-Request-ID": "error-case"}
    responses = {
        "401": httpx.post(f"{server.url}/inference", json={}, headers=headers),
        "404": admin.get("/no/such/route", headers=headers),
        "422": admin.post("/inference", json={"text": 1}, headers=headers),
        "413": admin.post(
            "/v1/chat/completions",
            content=b"x" * (server.settings.max_request_bytes + 1),
            headers={**headers, "content-type": "application/json"},
        ),
        "openai-404": admin.post("/v1/chat/completions", json={"model": "nope", "messages": []}, headers=headers),
    }
    for name, response in responses.items():
        assert response.status_code >= 400, name
        assert response.headers["x-request-id"] == "error-case", name


def test_streams_carry_the_request_id(admin):
    body = {"model": SMOL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "stream": True}
    with admin.stream("POST", "/v1/chat/completions", json=body, headers={"X-Request-ID": "stream-1"}) as response:
        assert response.status_code == 200
        assert response.headers["x-request-id"] == "stream-1"
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "[DONE]" in response.read().decode()


def test_json_logs_are_one_object_per_line_with_the_request_id(tmp_path, base_models_dir):
    port = free_port()
    env = {
        **os.environ,
        "OUTRIDER_DATA_DIR": str(tmp_path),
        "OUTRIDER_BASE_MODELS_DIR": str(base_models_dir),
        "OUTRIDER_ADMIN_API_KEY": ADMIN_KEY,
        "OUTRIDER_LOG_FORMAT": "json",
        "OUTRIDER_ACCESS_LOG": "true",
    }
    command = [sys.executable, "-m", "outrider", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.HTTPError:
                assert time.time() < deadline and process.poll() is None, "outrider serve did not start"
                time.sleep(0.1)
        assert httpx.get(f"{url}/health", headers={"X-Request-ID": "json-log-1"}).status_code == 200
        assert httpx.get(f"{url}/models/x", headers={"X-Request-ID": "json-log-2"}).status_code == 401
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    lines = [line for line in err.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message", "request_id"} <= set(r) for r in records)
    assert any(r["logger"].startswith("uvicorn") for r in records)  # the server's own lines too
    access = {r["request_id"]: r for r in records if r["logger"] == "outrider.access"}
    assert access["json-log-1"]["route"] == "/health" and access["json-log-1"]["status"] == 200
    assert access["json-log-1"]["method"] == "GET" and access["json-log-1"]["duration_ms"] >= 0
    assert access["json-log-2"]["route"] == "/models/{model_id}" and access["json-log-2"]["status"] == 401
