"""Upstream failures through every surface, and upstream health with its circuit breaker, over real HTTP:
the gateway's upstream is a small server on loopback that fails on purpose (tests/scripted_upstream.py),
plus a port where nothing listens and a provider whose key variable is unset."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from tests.conftest import GENEROUS_LIMITS, RunningServer, free_port, make_settings, start_server
from tests.scripted_upstream import MODELS, SCRIPTED_TEXT, ScriptedUpstream
from tests.waiting import wait_until

QUESTION = [{"role": "user", "content": "Hi"}]
FAILURES = [  # (model, the error code every surface reports, its status)
    ("status-500", "upstream_error", 502),
    ("status-503", "upstream_error", 502),
    ("status-401", "upstream_auth_error", 502),
    ("hang", "upstream_timeout", 502),
    ("status-404", "model_not_found", 404),
    ("status-400", "invalid_request", 422),
    ("status-429", "upstream_rate_limited", 429),
]
ALL_MODELS = [*MODELS, "status-401", "status-404", "status-400", "status-429"]


def providers_file(folder: Path, scripted: ScriptedUpstream) -> Path:
    models = [{"model": m} for m in ALL_MODELS]
    providers = [
        {"name": "flaky-oai", "type": "openai", "base_url": f"{scripted.url}/v1", "timeout_s": 1, "models": models},
        {"name": "flaky-ant", "type": "anthropic", "base_url": scripted.url, "timeout_s": 1, "models": models},
        {
            "name": "gone",
            "type": "openai",
            "base_url": f"http://127.0.0.1:{free_port()}/v1",
            "models": [{"model": "m"}],
        },
        {
            "name": "nokey",
            "type": "anthropic",
            "base_url": scripted.url,
            "api_key_env": "OUTRIDER_TEST_UNSET_KEY_VARIABLE",
            "models": [{"model": "scripted"}],
        },
    ]
    path = folder / "providers.json"
    path.write_text(json.dumps({"providers": providers}))
    return path


def start_gateway(tmp_path_factory, base_models_dir, scripted, **settings: object) -> RunningServer:
    folder = tmp_path_factory.mktemp("gateway")
    return start_server(
        make_settings(
            folder,
            base_models_dir,
            providers_file=providers_file(folder, scripted),
            rate_limits=GENEROUS_LIMITS,
            **settings,
        )
    )


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, base_models_dir, scripted) -> Iterator[RunningServer]:
    # A breaker that never opens here: these tests fail the same models again and again.
    running = start_gateway(tmp_path_factory, base_models_dir, scripted, upstream_breaker_failures=10_000)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def breaker_gateway(tmp_path_factory, base_models_dir, scripted) -> Iterator[RunningServer]:
    running = start_gateway(
        tmp_path_factory,
        base_models_dir,
        scripted,
        upstream_breaker_failures=2,
        upstream_breaker_cooldown_s=4.0,  # long enough that a loaded machine cannot outlast it between two calls
        upstream_health_ttl_s=0.2,
    )
    yield running
    running.stop()


def upstream_id(model: str, provider: str) -> str:
    return "gone/m" if model == "refused" else f"{provider}/{model}"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("model", "code", "status"), [*FAILURES, ("refused", "upstream_unreachable", 502)])
def test_openai_surface_answers_upstream_failures_in_its_envelope(oai, model, code, status, stream):
    with pytest.raises(openai.APIStatusError) as caught:
        oai.chat.completions.create(
            model=upstream_id(model, "flaky-ant"), messages=QUESTION, max_tokens=8, stream=stream
        )
    assert caught.value.status_code == status  # a stream that fails before its first token is an error status
    error = caught.value.response.json()["error"]
    assert error["code"] == code and error["type"] == openai_type(status) and "upstream" in error["message"]
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "7"


def openai_type(status: int) -> str:
    return {502: "api_error", 404: "not_found_error", 422: "invalid_request_error", 429: "rate_limit_error"}[status]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("model", "code", "status"), [*FAILURES, ("refused", "upstream_unreachable", 502)])
def test_anthropic_surface_answers_upstream_failures_in_its_envelope(ant, model, code, status, stream):
    with pytest.raises(anthropic.APIStatusError) as caught:
        ant.messages.create(model=upstream_id(model, "flaky-oai"), messages=QUESTION, max_tokens=8, stream=stream)
    assert caught.value.status_code == status
    body = caught.value.response.json()
    kinds = {502: "api_error", 404: "not_found_error", 422: "invalid_request_error", 429: "rate_limit_error"}
    assert body["type"] == "error" and body["error"]["type"] == kinds[status]
    assert "upstream" in body["error"]["message"]


@pytest.mark.parametrize("provider", ["flaky-oai", "flaky-ant"])
@pytest.mark.parametrize(
    ("model", "code", "status"), [FAILURES[0], FAILURES[3], ("refused", "upstream_unreachable", 502)]
)
def test_native_surface_answers_upstream_failures_and_records_them(gateway, provider, model, code, status):
    model_id = upstream_id(model, provider)
    with gateway.client() as client:
        reply = client.post("/inference", json={"model_id": model_id, "task": "generate", "messages": QUESTION})
        assert reply.status_code == status and set(reply.json()) == {"detail"}
        assert "upstream" in reply.json()["detail"]
        records = client.get("/inferences", params={"model_id": model_id, "status": "error"}).json()["inferences"]
    assert records and records[0]["error_type"] == code and records[0]["model_used"] == model_id


def test_responses_and_completions_surfaces_answer_502_too(oai):
    with pytest.raises(openai.APIStatusError) as caught:
        oai.responses.create(model="flaky-oai/status-500", input="Hi", max_output_tokens=8, stream=True)
    assert caught.value.status_code == 502 and caught.value.response.json()["error"]["code"] == "upstream_error"
    with pytest.raises(openai.APIStatusError) as caught:
        oai.completions.create(model="flaky-ant/hang", prompt="Hi", max_tokens=8)
    assert caught.value.status_code == 502 and caught.value.response.json()["error"]["code"] == "upstream_timeout"


def read_sse(gateway: RunningServer, path: str, body: dict) -> tuple[int, list[str]]:
    with gateway.client() as client, client.stream("POST", path, json={**body, "stream": True}) as response:
        return response.status_code, [line for line in response.iter_lines() if line]


@pytest.mark.parametrize("provider", ["flaky-oai", "flaky-ant"])
def test_a_failure_after_the_first_token_ends_the_stream_with_an_error_event(gateway, provider):
    model = f"{provider}/error-midstream"
    status, lines = read_sse(gateway, "/v1/chat/completions", {"model": model, "messages": QUESTION, "max_tokens": 8})
    data = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    assert status == 200 and lines[-1] == "data: [DONE]"
    assert any(d.get("choices") and d["choices"][0]["delta"].get("content") == SCRIPTED_TEXT[0] for d in data)
    assert data[-1]["error"]["code"] == "upstream_error" and data[-1]["error"]["type"] == "api_error"
    status, lines = read_sse(gateway, "/v1/messages", {"model": model, "messages": QUESTION, "max_tokens": 8})
    assert status == 200 and lines[-2] == "event: error"
    assert json.loads(lines[-1][6:])["error"]["type"] == "api_error"


def test_a_stream_cut_by_a_timeout_mid_way_is_an_upstream_timeout(gateway):
    body = {"model": "flaky-oai/hang-midstream", "messages": QUESTION, "max_tokens": 8}
    status, lines = read_sse(gateway, "/v1/chat/completions", body)
    assert status == 200 and json.loads(lines[-2][6:])["error"]["code"] == "upstream_timeout"


# -- health and the circuit breaker over HTTP --------------------------------------------------------------


def health(server: RunningServer, model: str) -> dict:
    with server.client() as client:
        reply = client.get(f"/models/{model}/health")
        assert reply.status_code == 200, reply.text
        return reply.json()


def test_health_of_unreachable_and_unconfigured_upstreams(gateway):
    assert health(gateway, "flaky-oai/scripted")["status"] == "ready"
    assert health(gateway, "flaky-ant/scripted")["status"] == "ready"
    gone = health(gateway, "gone/m")
    assert gone["status"] == "unavailable" and "unreachable" in gone["reason"]
    nokey = health(gateway, "nokey/scripted")
    assert nokey == {
        "model": "nokey/scripted",
        "status": "unavailable",
        "reason": "environment variable OUTRIDER_TEST_UNSET_KEY_VARIABLE (provider 'nokey') is not set",
        "runtime": None,  # an upstream model: nothing runs it here
    }
    with gateway.client() as client:
        reply = client.post("/v1/chat/completions", json={"model": "nokey/scripted", "messages": QUESTION})
    assert reply.status_code == 502 and reply.json()["error"]["code"] == "upstream_unavailable"


def test_failed_probes_open_the_circuit_and_a_good_probe_after_the_cool_down_closes_it(breaker_gateway, scripted):
    model = "flaky-ant/scripted"
    assert health(breaker_gateway, model)["status"] == "ready"
    scripted.models_status = 500
    try:
        time.sleep(0.3)  # past the cached result's TTL
        first = health(breaker_gateway, model)
        assert first["status"] == "unavailable" and "answered 500" in first["reason"]
        second = health(breaker_gateway, model)
        opened_at = time.time()
        assert second["status"] == "unavailable" and "failed 2 times in a row" in second["reason"]
        sent = len(scripted.requests)
        with breaker_gateway.client() as client:
            refused = client.post("/v1/chat/completions", json={"model": model, "messages": QUESTION})
        assert refused.status_code == 502 and refused.json()["error"]["code"] == "upstream_unavailable"
        assert len(scripted.requests) == sent  # an open circuit sends nothing upstream
    finally:
        scripted.models_status = 200
    # Open: health answers "unavailable" without probing until the cool-down ends; then the circuit is
    # half-open and the next probe, now answered, closes it.
    deadline = time.time() + 15
    while (report := health(breaker_gateway, model))["status"] != "ready" and time.time() < deadline:
        assert "failed 2 times in a row" in report["reason"]
        time.sleep(0.2)
    assert report == {"model": model, "status": "ready", "reason": None, "runtime": None}
    assert time.time() - opened_at >= 3.5  # not before the cool-down (opened_at is a little late)
    with breaker_gateway.client() as client:
        reply = client.post("/v1/chat/completions", json={"model": model, "messages": QUESTION, "max_tokens": 8})
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"] == "".join(SCRIPTED_TEXT)


def test_failing_calls_open_the_circuit_too(breaker_gateway):
    model = "flaky-oai/status-500"
    with breaker_gateway.client() as client:
        codes = [
            client.post("/v1/messages", json={"model": model, "messages": QUESTION, "max_tokens": 8}).json()
            for _ in range(3)
        ]
    assert [c["error"]["type"] for c in codes] == ["api_error"] * 3
    assert "scripted failure 500" in codes[1]["error"]["message"]
    assert "failed 2 times in a row" in codes[2]["error"]["message"]  # the third was never sent
    report = health(breaker_gateway, model)
    assert report["status"] == "unavailable" and "scripted failure 500" in report["reason"]
    # Other models of the same provider keep their own circuit.
    assert health(breaker_gateway, "flaky-oai/scripted")["status"] == "ready"


def test_unknown_models_still_404(gateway):
    with gateway.client() as client:
        assert client.get("/models/flaky-oai/nope/health").status_code == 404
        assert client.get("/models/flaky-oai/nope/health").json() == {
            "detail": "model 'flaky-oai/nope' not found; GET /models lists the available ids"
        }


@pytest.mark.parametrize("provider", ["flaky-oai", "flaky-ant"])
def test_a_client_that_goes_away_closes_the_upstream_connection(gateway, scripted, provider):
    model = f"{provider}/hang-midstream"
    before = scripted.disconnects
    body = {"model": model, "messages": QUESTION, "max_tokens": 8, "stream": True}
    with gateway.client() as client, client.stream("POST", "/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if SCRIPTED_TEXT[0] in line:
                break  # one token arrived; the client leaves while the upstream is still generating
    wait_until(lambda: scripted.disconnects != before, 10, 0.05, "the upstream connection to close")
    assert scripted.disconnects == before + 1
    with gateway.client() as client:
        cancelled = {"model_id": model, "status": "cancelled"}
        records = wait_until(lambda: client.get("/inferences", params=cancelled).json()["inferences"], 10, 0.1)
    assert records[0]["output"]["completion"] == SCRIPTED_TEXT[0]
    assert records[0]["output"]["finish_reason"] == "cancelled"
