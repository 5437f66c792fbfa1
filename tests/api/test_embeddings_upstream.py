"""Upstream embedding models through ``POST /v1/embeddings``: the gateway's provider is the scripted upstream on
loopback (tests/scripted_upstream.py), declared with ``kind: embedding``; the official OpenAI SDK calls the
gateway, floats and base64, and every answer is checked against what the upstream was sent and answered."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import openai
import pytest

from tests.conftest import GENEROUS_LIMITS, RunningServer, new_account
from tests.scripted_upstream import scripted_vector, start_gateway_for
from tests.waiting import wait_until

EMBED = "up-embed"  # the scripted upstream's "scripted" model, declared with a price
PRICE = 0.4  # USD per million input tokens
TEXTS = ["one two three", "four", "five six"]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, base_models_dir, scripted) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("embeddings-gateway")
    models = [
        {"model": "scripted", "id": EMBED, "kind": "embedding", "price": [PRICE, 0]},
        {"model": "no-usage", "id": "up-embed-b64", "kind": "embedding", "price": [PRICE, 0]},
        {"model": "status-500", "id": "up-embed-500", "kind": "embedding"},
        {"model": "status-400", "id": "up-embed-400", "kind": "embedding"},
        {"model": "scripted", "id": "up-chat"},
    ]
    providers = [{"name": "emb", "type": "openai", "base_url": f"{scripted.url}/v1", "models": models}]
    limits = {**GENEROUS_LIMITS, "embeddings": "1000/minute"}
    running = start_gateway_for(folder, base_models_dir, providers, rate_limits=limits)
    yield running
    running.stop()


def test_floats_and_the_sdk_default_reach_the_upstream_and_come_back(oai, scripted):
    answer = oai.embeddings.create(model=EMBED, input=TEXTS, encoding_format="float")
    sent = scripted.last()
    assert sent["path"] == "/v1/embeddings"
    assert sent["body"] == {"model": "scripted", "input": TEXTS, "encoding_format": "float"}
    assert sent["headers"].get("Authorization") is None  # no api_key_env declared: no key sent
    # The upstream answered in reverse index order: the gateway puts the vectors back in input order.
    assert [item.embedding for item in answer.data] == [scripted_vector(t) for t in TEXTS]
    assert answer.usage.prompt_tokens == 6  # the upstream's count (one token per word)
    assert answer.usage.model_extra["cost"] == round(6 * PRICE) / 1e6  # whole micro-dollars, as every call
    decoded = oai.embeddings.create(model=EMBED, input=TEXTS[0])  # the SDK asks for base64 and decodes it
    assert np.array_equal(np.array(decoded.data[0].embedding), scripted_vector(TEXTS[0]))


def test_dimensions_are_passed_on(oai, scripted):
    answer = oai.embeddings.create(model=EMBED, input="abc", dimensions=7, encoding_format="float")
    assert scripted.last()["body"]["dimensions"] == 7
    assert answer.data[0].embedding == scripted_vector("abc", 7)


def test_base64_from_the_upstream_and_estimated_usage(oai):
    answer = oai.embeddings.create(model="up-embed-b64", input=["abcdefgh", "xy"], encoding_format="float")
    assert [item.embedding for item in answer.data] == [scripted_vector("abcdefgh"), scripted_vector("xy")]
    assert answer.usage.prompt_tokens == 3  # no usage from the upstream: ten characters at four a token


def test_upstream_failures_in_openais_envelope(oai, gateway):
    with pytest.raises(openai.APIStatusError) as failed:
        oai.embeddings.create(model="up-embed-500", input="hi")
    assert failed.value.status_code == 502 and failed.value.body["code"] == "upstream_error"
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        oai.embeddings.create(model="up-embed-400", input="hi")
    assert "scripted failure 400" in refused.value.body["message"]
    with pytest.raises(openai.UnprocessableEntityError) as wrong_kind:
        oai.embeddings.create(model="up-chat", input="hi")
    assert "decoder model" in wrong_kind.value.body["message"]
    with pytest.raises(openai.UnprocessableEntityError) as chat:
        oai.chat.completions.create(model=EMBED, messages=[{"role": "user", "content": "hi"}])
    assert "POST /v1/embeddings" in chat.value.body["message"]


def test_listed_as_embedding_models(oai, gateway):
    listed = {m.id: m.model_extra for m in oai.models.list()}
    assert listed[EMBED]["kind"] == "embedding" and listed["up-chat"]["kind"] == "decoder"
    with gateway.client() as admin:
        native = {m["id"]: m for m in admin.get("/models").json()["data"]}
    assert native[EMBED]["capabilities"] == ["embeddings"] and native[EMBED]["price_input_per_mtok"] == PRICE


def test_charged_recorded_and_rate_limited(gateway):
    with gateway.client() as admin:
        key = new_account(admin, "upstream-embeddings", credit_usd=1.0)
    with gateway.client(key) as http:
        response = http.post("/v1/embeddings", json={"model": EMBED, "input": TEXTS})
        assert response.status_code == 200 and response.headers["X-RateLimit-Limit"] == "1000"
        cost = round(6 * PRICE)
        assert http.get("/credits").json()["balance_micro_usd"] == 1_000_000 - cost
        usage = wait_until(lambda: (body := http.get("/usage").json())["totals"]["requests"] == 1 and body)
        record = usage["data"][0]
        assert (record["model_used"], record["prompt_tokens"], record["cost_micro_usd"]) == (EMBED, 6, cost)
        failed = http.post("/v1/embeddings", json={"model": "up-embed-500", "input": "hi"})
        assert failed.status_code == 502
        errors = wait_until(lambda: (body := http.get("/usage", params={"status": "error"}).json())["data"] and body)
        assert errors["data"][0]["model_id"] == "up-embed-500" and errors["data"][0]["cost_micro_usd"] == 0
        assert http.get("/credits").json()["reserved_micro_usd"] == 0
