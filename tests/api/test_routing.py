"""``model: "auto"`` over real HTTP: pool and mode from the key, per-request overrides, the routing event
first in streams, the decision on responses and in history, fallbacks, 403 outside the key's pool.

The gateway's upstreams are the scripted server on loopback (tests/scripted_upstream.py) declared as
several providers with different prices and configured fit scores, so the ranking is known in advance.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from tests.conftest import ADMIN_KEY, GENEROUS_LIMITS, SMOL, RunningServer, make_settings, start_server
from tests.scripted_upstream import SCRIPTED_TEXT, ScriptedUpstream

CHEAP, PRICEY, BROKEN, DOWN = "cheap-llm", "pricey-llm", "broken-llm", "down-llm"
EVENT_KEYS = {"object", "task", "complexity", "confidence", "model", "routing_time_ms"}
ASK = [{"role": "user", "content": "Write a Python function that reverses a string."}]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, base_models_dir) -> Iterator[RunningServer]:
    scripted = ScriptedUpstream().start()
    folder = tmp_path_factory.mktemp("routing-gateway")

    def provider(name: str, model: str, exposed: str, price: list[float]) -> dict:
        return {
            "name": name,
            "type": "openai",
            "base_url": f"{scripted.url}/v1",
            "timeout_s": 2,
            "models": [{"model": model, "id": exposed, "price": price}],
        }

    providers = [
        provider("cheap", "scripted", CHEAP, [0.1, 0.2]),
        provider("pricey", "scripted", PRICEY, [10.0, 30.0]),
        provider("broken", "status-500", BROKEN, [0.1, 0.2]),
        provider("down", "status-503", DOWN, [0.1, 0.2]),
    ]
    (folder / "providers.json").write_text(json.dumps({"providers": providers}))
    settings = make_settings(
        folder,
        base_models_dir,
        providers_file=folder / "providers.json",
        rate_limits=GENEROUS_LIMITS,
        upstream_breaker_failures=10_000,  # the failing models stay in the pool: fallbacks are under test
        routing_fit_scores={PRICEY: {"*": 0.95}, CHEAP: {"*": 0.55}, BROKEN: {"*": 0.99}, DOWN: {"*": 0.98}},
    )
    running = start_server(settings)
    yield running
    running.stop()
    scripted.stop()


@pytest.fixture(scope="module")
def admin_http(gateway) -> Iterator[httpx.Client]:
    with gateway.client() as client:
        yield client


def key_with(admin_http: httpx.Client, **fields) -> str:
    created = admin_http.post("/keys", json={"name": "routing", **fields})
    assert created.status_code == 201, created.text
    return created.json()["key"]


def oai(gateway: RunningServer, key: str = ADMIN_KEY) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{gateway.url}/v1", max_retries=0)


def test_the_key_sets_the_pool_and_mode_and_the_request_can_override_them(gateway, admin_http):
    cost_key = key_with(admin_http, model_pool=[CHEAP, PRICEY], optimize_mode="cost")
    answer = oai(gateway, cost_key).chat.completions.create(model="auto", messages=ASK, max_tokens=8)
    assert answer.model == CHEAP
    assert answer.choices[0].message.content == "".join(SCRIPTED_TEXT)
    decision = answer.model_extra["routing"]
    assert set(decision) == EVENT_KEYS and decision["model"] == CHEAP and decision["object"] == "routing"
    assert decision["task"] == "code"

    quality = oai(gateway, cost_key).chat.completions.create(
        model="auto", messages=ASK, max_tokens=8, extra_body={"routing": {"optimize": "quality"}}
    )
    assert quality.model == PRICEY

    quality_key = key_with(admin_http, model_pool=[CHEAP, PRICEY], optimize_mode="quality")
    raw = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {quality_key}"},
        json={"model": "auto", "messages": ASK, "max_tokens": 8},
        timeout=60,
    )
    assert raw.json()["model"] == PRICEY and raw.headers["X-Outrider-Route"] == PRICEY


def test_a_routing_pool_outside_the_keys_pool_is_403(gateway, admin_http):
    key = key_with(admin_http, model_pool=[CHEAP])
    with pytest.raises(openai.PermissionDeniedError) as caught:
        oai(gateway, key).chat.completions.create(
            model="auto", messages=ASK, max_tokens=8, extra_body={"routing": {"model_pool": [PRICEY]}}
        )
    assert "routing.model_pool" in caught.value.body["message"]
    with pytest.raises(openai.PermissionDeniedError):
        oai(gateway, key).chat.completions.create(model=PRICEY, messages=ASK, max_tokens=8)


def test_auto_with_a_key_pooled_to_extraction_models_only_is_a_422_naming_the_pool(gateway, admin_http):
    """Issue #15 item 8: this was a 502 "pool: none", as if the server had failed."""
    encoder = "outrider/gliner2-minilm-l6"
    key = key_with(admin_http, model_pool=[encoder])
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        oai(gateway, key).chat.completions.create(model="auto", messages=ASK, max_tokens=8)
    error = caught.value.body
    assert error["type"] == "invalid_request_error" and error["param"] == "model"
    assert encoder in error["message"] and "generation model" in error["message"]
    with pytest.raises(anthropic.UnprocessableEntityError) as refused:
        anthropic.Anthropic(api_key=key, base_url=gateway.url, max_retries=0).messages.create(
            model="auto", max_tokens=8, messages=ASK
        )
    assert refused.value.body["error"]["type"] == "invalid_request_error"
    native = httpx.post(
        f"{gateway.url}/inference",
        headers={"X-API-Key": key},
        json={"model_id": "auto", "task": "generate", "messages": ASK, "max_tokens": 8},
    )
    assert native.status_code == 422 and encoder in native.json()["detail"]


def test_the_routing_event_comes_first_in_an_openai_stream(gateway):
    body = {
        "model": "auto",
        "messages": ASK,
        "max_tokens": 8,
        "stream": True,
        "routing": {"model_pool": [CHEAP, PRICEY], "optimize": "cost"},
    }
    with httpx.stream(
        "POST", f"{gateway.url}/v1/chat/completions", json=body, headers={"X-API-Key": ADMIN_KEY}, timeout=60
    ) as response:
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    first = json.loads(events[0])
    assert set(first) == EVENT_KEYS and first["object"] == "routing" and first["model"] == CHEAP
    assert 0 < first["confidence"] <= 1 and first["routing_time_ms"] >= 0
    chunks = [json.loads(e) for e in events[1:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == CHEAP for c in chunks)
    assert events[-1] == "[DONE]"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "".join(SCRIPTED_TEXT)


def test_the_routing_event_comes_first_in_an_anthropic_stream_and_the_sdk_reads_on(gateway):
    client = anthropic.Anthropic(api_key=ADMIN_KEY, base_url=gateway.url, max_retries=0)
    with client.messages.stream(
        model="auto",
        max_tokens=8,
        messages=ASK,
        extra_body={"routing": {"model_pool": [CHEAP, PRICEY], "optimize": "quality"}},
    ) as stream:
        final = stream.get_final_message()
    assert final.model == PRICEY and final.content[0].text == "".join(SCRIPTED_TEXT)
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/messages",
        json={"model": "auto", "max_tokens": 8, "messages": ASK, "stream": True, "routing": {"model_pool": [CHEAP]}},
        headers={"x-api-key": ADMIN_KEY},
        timeout=60,
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[0] == "event: routing"
    assert json.loads(lines[1].removeprefix("data: "))["model"] == CHEAP
    assert lines[2] == "event: message_start"


def test_the_task_override_and_the_decision_stored_with_the_inference(gateway, admin_http):
    answer = admin_http.post(
        "/inference",
        json={
            "model_id": "auto",
            "task": "generate",
            "messages": ASK,
            "max_tokens": 8,
            "routing": {"model_pool": [CHEAP, PRICEY], "task": "translation", "optimize": "cost"},
        },
    ).json()
    assert answer["model_id"] == "auto" and answer["model_used"] == CHEAP
    assert answer["routing"]["task"] == "translation" and answer["routing"]["confidence"] == 1.0
    record = admin_http.get(f"/inferences/{answer['inference_id']}").json()
    assert record["routing"]["model"] == CHEAP and record["routing"]["mode"] == "cost"
    assert [c["model"] for c in record["routing"]["candidates"]] == [CHEAP, PRICEY]
    assert record["routing"]["task_source"] == "override"
    bad = admin_http.post(
        "/inference",
        json={"model_id": "auto", "task": "generate", "messages": ASK, "routing": {"task": "juggling"}},
    )
    assert bad.status_code == 422


def test_a_model_that_fails_before_its_first_token_falls_back_to_the_next_best(gateway, admin_http):
    pool = [BROKEN, DOWN, CHEAP]
    answer = oai(gateway).chat.completions.create(
        model="auto", messages=ASK, max_tokens=8, extra_body={"routing": {"model_pool": pool, "optimize": "quality"}}
    )
    assert answer.model == CHEAP  # BROKEN (fit .99) and DOWN (.98) ranked first, both fail with 5xx
    assert answer.model_extra["routing"]["model"] == CHEAP
    history = admin_http.get("/inferences", params={"model_id": "auto", "limit": 3}).json()["inferences"]
    assert [(r["model_used"], r["status"]) for r in history] == [(CHEAP, "success"), (DOWN, "error"), (BROKEN, "error")]
    assert len(history[0]["routing"]["fallback_from"]) == 2

    with pytest.raises(openai.APIStatusError) as caught:
        oai(gateway).chat.completions.create(
            model="auto", messages=ASK, max_tokens=8, extra_body={"routing": {"model_pool": [BROKEN, DOWN]}}
        )
    assert caught.value.status_code == 502
    assert "every model tried" in caught.value.body["message"]


@pytest.fixture
def resolutions(gateway, monkeypatch) -> list[str]:
    """Every model id the running server's catalog resolves (``find`` is where every resolution goes)."""
    catalog = gateway.services.catalog
    original, seen = catalog.find, []

    async def counted(model_id: str):
        seen.append(model_id)
        return await original(model_id)

    monkeypatch.setattr(catalog, "find", counted)
    return seen


def test_a_routed_call_resolves_each_model_once(gateway, admin_http, resolutions):
    """Routing resolves its pool; each attempt then starts on the resolved spec instead of resolving again."""
    pool = [BROKEN, DOWN, CHEAP]
    answer = oai(gateway).chat.completions.create(
        model="auto", messages=ASK, max_tokens=8, extra_body={"routing": {"model_pool": pool, "optimize": "quality"}}
    )
    assert answer.model == CHEAP  # after two fallbacks: three attempts, still one resolution per model
    assert sorted(resolutions) == sorted(pool)
    resolutions.clear()
    key = key_with(admin_http, model_pool=[CHEAP, PRICEY], optimize_mode="cost")
    assert oai(gateway, key).chat.completions.create(model="auto", messages=ASK, max_tokens=8).model == CHEAP
    assert sorted(resolutions) == sorted([CHEAP, PRICEY])
    resolutions.clear()
    oai(gateway).chat.completions.create(model=CHEAP, messages=ASK, max_tokens=8)  # named: resolved once too
    assert resolutions == [CHEAP]


def test_without_a_pool_every_served_decoder_is_a_candidate(gateway, admin_http):
    answer = oai(gateway).chat.completions.create(
        model="auto", messages=ASK, max_tokens=8, extra_body={"routing": {"optimize": "quality"}}
    )
    assert answer.model == PRICEY  # BROKEN and DOWN rank higher and fail; three attempts at most
    record = admin_http.get("/inferences", params={"model_id": "auto", "limit": 1}).json()["inferences"][0]
    assert set(record["routing"]["pool"]) >= {CHEAP, PRICEY, BROKEN, DOWN, SMOL}
    unknown = next(c for c in record["routing"]["candidates"] if c["model"] == SMOL)
    assert unknown["fit_known"] is False  # no configured score, no feedback: unknown, not guessed


def test_feedback_on_routed_calls_moves_the_fit_scores(gateway, admin_http):
    body = {
        "model_id": "auto",
        "task": "generate",
        "messages": [{"role": "user", "content": "Summarize: the meeting moved to Friday because of the holiday."}],
        "max_tokens": 8,
        "routing": {"model_pool": [CHEAP, PRICEY], "optimize": "quality", "task": "summarization"},
    }
    assert admin_http.post("/inference", json=body).json()["model_used"] == PRICEY
    for _ in range(20):  # PRICEY keeps getting summaries wrong
        answer = admin_http.post("/inference", json=body).json()
        if answer["model_used"] != PRICEY:
            break
        feedback = admin_http.post(
            f"/inferences/{answer['inference_id']}/feedback",
            json={"verdict": "incorrect", "corrected_output": "Meeting moved to Friday."},
        )
        assert feedback.status_code == 200, feedback.text
    assert admin_http.post("/inference", json=body).json()["model_used"] == CHEAP
    # ... for summaries only: its configured fit for code is untouched.
    code = {**body, "routing": {**body["routing"], "task": "code"}}
    assert admin_http.post("/inference", json=code).json()["model_used"] == PRICEY


def test_the_openai_sdk_reads_a_routed_stream(gateway):
    stream = oai(gateway).chat.completions.create(
        model="auto",
        messages=ASK,
        max_tokens=8,
        stream=True,
        extra_body={"routing": {"model_pool": [CHEAP], "optimize": "cost"}},
    )
    events = list(stream)
    assert events[0].object == "routing" and events[0].model == CHEAP
    text = "".join(e.choices[0].delta.content or "" for e in events[1:] if e.choices)
    assert text == "".join(SCRIPTED_TEXT)
