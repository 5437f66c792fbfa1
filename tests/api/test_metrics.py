"""GET /metrics over real HTTP, parsed with prometheus-client's own parser: who may read it, the pinned metric
names, and counters, histograms and gauges that move with real traffic (extraction, chat, a routed call, an
upstream whose breaker opens, a job, a credit reservation)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from outrider.storage.queries import accounts as accounts_q
from outrider.storage.queries import billing as billing_q
from tests.conftest import ADMIN_KEY, GENEROUS_LIMITS, SMOL, RunningServer, make_settings, new_account, start_server
from tests.scripted_upstream import ScriptedUpstream
from tests.waiting import wait_until

METRICS_TOKEN = "metrics-token-for-tests-0123456789"
OK_LLM, FLAKY_LLM = "ok-llm", "flaky-llm"
PERSON = {"entities": ["person"]}
# Every Outrider metric family, as prometheus-client's parser names them (counters without ``_total``).
PINNED = {
    "outrider_build_info",
    "outrider_http_requests",
    "outrider_http_request_duration_seconds",
    "outrider_model_calls",
    "outrider_model_tokens",
    "outrider_model_cost_usd",
    "outrider_model_call_duration_seconds",
    "outrider_batch_size",
    "outrider_model_queue_depth",
    "outrider_routing_decisions",
    "outrider_upstream_healthy",
    "outrider_upstream_breaker_state",
    "outrider_upstream_consecutive_failures",
    "outrider_jobs",
    "outrider_credits_reserved_usd",
    "outrider_metrics_store_up",
}

Samples = dict[tuple[str, frozenset], float]


MINILM_EMBEDDING = "sentence-transformers/all-MiniLM-L6-v2"


def scrape(client: httpx.Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def chat(client: httpx.Client, model: str, text: str = "Hi", **extra: object) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 4, "temperature": 0}
    return client.post("/v1/chat/completions", json={**body, **extra})


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, base_models_dir) -> Iterator[RunningServer]:
    """A server with a metrics token, a healthy and a failing upstream model (the scripted server), whose
    breaker opens after two failures."""
    scripted = ScriptedUpstream().start()
    folder = tmp_path_factory.mktemp("metrics-gateway")

    def provider(name: str, model: str, exposed: str) -> dict:
        models = [{"model": model, "id": exposed, "price": [1.0, 2.0]}]
        return {"name": name, "type": "openai", "base_url": f"{scripted.url}/v1", "timeout_s": 2, "models": models}

    providers = {"providers": [provider("ok", "scripted", OK_LLM), provider("flaky", "status-500", FLAKY_LLM)]}
    (folder / "providers.json").write_text(json.dumps(providers))
    settings = make_settings(
        folder,
        base_models_dir,
        providers_file=folder / "providers.json",
        rate_limits=GENEROUS_LIMITS,
        upstream_breaker_failures=2,
        upstream_breaker_cooldown_s=600,
        metrics_token=METRICS_TOKEN,
        routing_fit_scores={OK_LLM: {"*": 0.9}},
    )
    running = start_server(settings)
    yield running
    running.stop()
    scripted.stop()


def test_metrics_are_for_admins_and_the_metrics_token_only(server, admin, gateway):
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    with server.client(new_account(admin, "metrics-reader", credit_usd=None)) as tenant:
        refused = tenant.get("/metrics")
    assert refused.status_code == 403 and "metrics token" in refused.json()["detail"]
    # Without OUTRIDER_METRICS_TOKEN, no bearer token but an admin key passes.
    assert httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).status_code == 401
    assert httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200
    with_token = httpx.get(f"{gateway.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert with_token.status_code == 200 and "outrider_http_requests_total" in with_token.text
    wrong = httpx.get(f"{gateway.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}x"})
    assert wrong.status_code == 401
    assert httpx.get(f"{gateway.url}/metrics", headers={"X-API-Key": ADMIN_KEY}).status_code == 200


def test_metric_names_are_pinned_and_labels_hold_no_secrets(admin):
    admin.post(
        "/inference",
        json={"model_id": "demo-extractor", "text": "Ann works at Sony.", "schema": PERSON},
    )
    response = admin.get("/metrics")
    families = {family.name for family in text_string_to_metric_families(response.text)}
    assert {name for name in families if name.startswith("outrider_")} == PINNED
    assert "process_resident_memory_bytes" in families
    assert ADMIN_KEY not in response.text and "ork_" not in response.text


def test_an_extraction_moves_requests_calls_tokens_cost_and_batches(admin):
    before = scrape(admin)
    body = {
        "model_id": "demo-extractor",
        "text": "David Kim works for Sony in Berlin.",
        "schema": {"entities": ["person"]},
    }
    answer = admin.post("/inference", json=body)
    assert answer.status_code == 200, answer.text
    assert admin.get("/no/such/path").status_code == 404
    after = scrape(admin)
    usage = answer.json()["usage"]

    def delta(name: str, **labels: str) -> float:
        return moved(before, after, name, **labels)

    assert delta("outrider_http_requests_total", route="/inference", method="POST", status="200") == 1
    assert delta("outrider_http_request_duration_seconds_count", route="/inference", method="POST") == 1
    assert delta("outrider_http_request_duration_seconds_sum", route="/inference", method="POST") > 0
    assert delta("outrider_http_requests_total", route="unmatched", method="GET", status="404") == 1
    call = {"model": "demo-extractor", "surface": "native", "task": "extract", "status": "success"}
    assert delta("outrider_model_calls_total", **call) == 1
    assert delta("outrider_model_tokens_total", model="demo-extractor", kind="prompt") == usage["prompt_tokens"]
    assert delta("outrider_model_cost_usd_total", model="demo-extractor") == pytest.approx(usage["cost"])
    assert delta("outrider_model_call_duration_seconds_count", model="demo-extractor", task="extract") == 1
    assert delta("outrider_batch_size_count", model="demo-extractor", kind="encoder") >= 1
    assert delta("outrider_batch_size_sum", model="demo-extractor", kind="encoder") >= 1
    assert value(after, "outrider_model_queue_depth", model="demo-extractor", kind="encoder") == 0
    # The first scrape is a request too: counted once it had been answered.
    assert delta("outrider_http_requests_total", route="/metrics", method="GET", status="200") == 1


def test_a_chat_moves_completion_tokens_and_decoder_batches(admin):
    before = scrape(admin)
    answer = chat(admin, SMOL)
    assert answer.status_code == 200, answer.text
    after = scrape(admin)
    usage = answer.json()["usage"]
    for kind in ("prompt", "completion"):
        assert moved(before, after, "outrider_model_tokens_total", model=SMOL, kind=kind) == usage[f"{kind}_tokens"]
    call = {"model": SMOL, "surface": "openai", "task": "generate", "status": "success"}
    assert moved(before, after, "outrider_model_calls_total", **call) == 1
    assert moved(before, after, "outrider_batch_size_count", model=SMOL, kind="decoder") >= 1
    route = {"route": "/v1/chat/completions", "method": "POST", "status": "200"}
    assert moved(before, after, "outrider_http_requests_total", **route) == 1


def test_an_embedding_call_moves_embedding_batches(admin):
    before = scrape(admin)
    answer = admin.post("/v1/embeddings", json={"model": MINILM_EMBEDDING, "input": ["one text", "and another"]})
    assert answer.status_code == 200, answer.text
    after = scrape(admin)
    assert moved(before, after, "outrider_batch_size_count", model=MINILM_EMBEDDING, kind="embedding") == 1
    assert moved(before, after, "outrider_batch_size_sum", model=MINILM_EMBEDDING, kind="embedding") == 2
    assert value(after, "outrider_model_queue_depth", model=MINILM_EMBEDDING, kind="embedding") == 0


def test_upstream_health_breaker_and_routing_decisions(gateway):
    with gateway.client() as client:
        before = scrape(client)
        assert value(before, "outrider_upstream_healthy", model=FLAKY_LLM) == 1
        assert value(before, "outrider_upstream_breaker_state", model=FLAKY_LLM, state="closed") == 1
        assert [chat(client, FLAKY_LLM).status_code for _ in range(2)] == [502, 502]
        routed = chat(client, "auto", "Write a haiku about rain.", routing={"model_pool": [OK_LLM, FLAKY_LLM]})
        assert routed.status_code == 200, routed.text
        decision = routed.json()["routing"]
        after = scrape(client)
    assert value(after, "outrider_upstream_breaker_state", model=FLAKY_LLM, state="open") == 1
    assert value(after, "outrider_upstream_breaker_state", model=FLAKY_LLM, state="closed") == 0
    assert value(after, "outrider_upstream_healthy", model=FLAKY_LLM) == 0
    assert value(after, "outrider_upstream_consecutive_failures", model=FLAKY_LLM) == 2
    assert value(after, "outrider_upstream_healthy", model=OK_LLM) == 1
    # Each app has a registry of its own: the other server's extraction calls are not counted here.
    assert not any(dict(labels).get("model") == "demo-extractor" for _, labels in after)
    failed_calls = {"model": FLAKY_LLM, "surface": "openai", "task": "generate", "status": "error"}
    assert value(after, "outrider_model_calls_total", **failed_calls) == 2
    assert decision["model"] == OK_LLM  # the open breaker took the flaky model out of the pool
    chosen = {"task": decision["task"], "model": OK_LLM, "mode": "balanced"}
    assert moved(before, after, "outrider_routing_decisions_total", **chosen) == 1


def test_jobs_and_reserved_credit_are_read_from_the_store(gateway):
    with gateway.client() as client:
        before = scrape(client)
        assert value(before, "outrider_metrics_store_up") == 1
        assert {"training", "generation"} <= {
            dict(labels)["kind"] for name, labels in before if name == "outrider_jobs"
        }
        job = {
            "task_type": "ner",
            "dataset_name": "metrics-ner",
            "num_examples": 1,
            "labels": ["person"],
            "domain_description": "Sentences naming people.",
            "teacher_model": OK_LLM,
        }
        started = client.post("/generate", json=job)
        assert started.status_code == 200, started.text
        job_id = started.json()["job_id"]
        client.post(f"/generate/jobs/{job_id}/stop")
        final = wait_until(
            lambda: (
                (j := client.get(f"/generate/jobs/{job_id}").json())["status"] in ("complete", "failed", "stopped")
                and j["status"]
            ),
            timeout=60,
        )
        new_account(client, "metrics-reserved", credit_usd=1.0)
        services = gateway.services
        with services.db.session() as s:
            account = accounts_q.get_account_by_name(s, "metrics-reserved")
            assert billing_q.reserve(s, account.id, 1234)  # a call in flight, as the store sees it
        try:
            after = scrape(client)
        finally:
            with services.db.session() as s:
                billing_q.release(s, account.id, 1234)
        settled = scrape(client)
    counted = {"kind": "generation", "state": final}
    assert value(after, "outrider_jobs", **counted) - value(before, "outrider_jobs", **counted) == 1
    assert value(after, "outrider_credits_reserved_usd") == pytest.approx(0.001234)
    assert value(settled, "outrider_credits_reserved_usd") == 0
    assert not math.isnan(value(settled, "outrider_credits_reserved_usd"))
