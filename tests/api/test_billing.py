"""Credits, transactions and usage over real HTTP, through the official SDKs where a surface is involved."""

from __future__ import annotations

import asyncio
import time

import anthropic
import httpx
import openai
import pytest

from tests.conftest import PRICES, SMOL, new_account
from tests.waiting import wait_until

DEMO = "demo-extractor"
TEXT = "Ada Lovelace works for Analytical Engines Ltd in London."
SCHEMA = {"entities": ["person", "company", "location"]}


def micro(usd: float) -> int:
    return round(usd * 1_000_000)


def balance(client: httpx.Client) -> int:
    body = client.get("/credits").json()
    assert body["available_micro_usd"] == body["balance_micro_usd"] - body["reserved_micro_usd"]
    return body["balance_micro_usd"]


def wait_for_usage(client: httpx.Client, count: int, **filters) -> dict:
    deadline = time.time() + 60
    while True:
        body = client.get("/usage", params={"limit": 500, **filters}).json()
        if body["totals"]["requests"] >= count or time.time() > deadline:
            return body
        time.sleep(0.2)


def test_every_surface_charges_exactly_the_reported_cost(server, admin):
    key = new_account(admin, "billing-arithmetic", credit_usd=1.0)
    client = server.client(key)
    assert balance(client) == 1_000_000
    costs = []

    native = client.post("/inference", json={"model_id": DEMO, "text": TEXT, "schema": SCHEMA}).json()
    assert native["usage"]["cost"] > 0
    costs.append(micro(native["usage"]["cost"]))

    oa = openai.OpenAI(api_key=key, base_url=f"{server.url}/v1")
    chat = oa.chat.completions.create(model=SMOL, messages=[{"role": "user", "content": "Say hi"}], max_tokens=6)
    price_in, price_out = PRICES[SMOL]
    expected = round(chat.usage.prompt_tokens * price_in + chat.usage.completion_tokens * price_out)
    assert micro(chat.usage.cost) == expected
    costs.append(expected)

    stream = oa.chat.completions.create(
        model=SMOL,
        messages=[{"role": "user", "content": "Count to three"}],
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    streamed_usage = [chunk.usage for chunk in stream if chunk.usage is not None][-1]
    costs.append(micro(streamed_usage.cost))

    claude = anthropic.Anthropic(api_key=key, base_url=server.url)
    with claude.messages.stream(model=SMOL, max_tokens=6, messages=[{"role": "user", "content": "Hello"}]) as s:
        final = s.get_final_message()
    claude_cost = round(final.usage.input_tokens * price_in + final.usage.output_tokens * price_out)
    costs.append(claude_cost)

    assert balance(client) == 1_000_000 - sum(costs)
    usage = wait_for_usage(client, 4)
    assert usage["totals"]["requests"] == 4
    assert usage["totals"]["cost_micro_usd"] == sum(costs)
    assert sorted(u["cost_micro_usd"] for u in usage["data"]) == sorted(costs)
    txns = client.get("/credits/transactions").json()
    assert txns["total"] == 5  # the grant and four charges
    charges = [t for t in txns["data"] if t["kind"] == "inference"]
    assert sorted(-t["amount_micro_usd"] for t in charges) == sorted(costs)
    assert txns["data"][0]["balance_after_micro_usd"] == 1_000_000 - sum(costs)  # newest first
    assert native["inference_id"] in {t["reference_id"] for t in charges}


def test_a_stream_cut_off_by_the_client_is_charged_for_what_it_produced(server, admin):
    key = new_account(admin, "billing-disconnect", credit_usd=1.0)
    client = server.client(key)
    oa = openai.OpenAI(api_key=key, base_url=f"{server.url}/v1")
    stream = oa.chat.completions.create(
        model=SMOL, messages=[{"role": "user", "content": "Tell me a long story"}], max_tokens=200, stream=True
    )
    received = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            received += 1
        if received >= 3:
            break
    stream.close()
    record = wait_for_usage(client, 1, status="cancelled")["data"][0]
    assert 3 <= record["completion_tokens"] < 200
    price_in, price_out = PRICES[SMOL]
    assert record["cost_micro_usd"] == round(
        record["prompt_tokens"] * price_in + record["completion_tokens"] * price_out
    )
    wait_until(lambda: not client.get("/credits").json()["reserved_micro_usd"], 30, 0.1, "the hold to be released")
    assert balance(client) == 1_000_000 - record["cost_micro_usd"]


def test_a_call_the_balance_cannot_cover_is_refused_with_402_and_nothing_charged(server, admin):
    key = new_account(admin, "billing-poor", credit_usd=0.00001)  # ten micro-dollars
    client = server.client(key)
    native = client.post("/inference", json={"model_id": DEMO, "text": TEXT * 3, "schema": SCHEMA})
    assert native.status_code == 402
    assert "insufficient credits" in native.json()["detail"]
    with pytest.raises(openai.APIStatusError) as oa_error:
        openai.OpenAI(api_key=key, base_url=f"{server.url}/v1").chat.completions.create(
            model=SMOL, messages=[{"role": "user", "content": "Hi"}], max_tokens=50
        )
    assert oa_error.value.status_code == 402
    assert oa_error.value.body["code"] == "insufficient_credits"
    with pytest.raises(anthropic.APIStatusError) as an_error:
        anthropic.Anthropic(api_key=key, base_url=server.url).messages.create(
            model=SMOL, max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
        )
    assert an_error.value.status_code == 402
    assert an_error.value.body["error"]["type"] == "billing_error"
    assert balance(client) == 10
    assert client.get("/credits").json()["reserved_micro_usd"] == 0
    assert client.get("/usage").json()["totals"]["requests"] == 0
    assert [t["kind"] for t in client.get("/credits/transactions").json()["data"]] == ["grant"]


def test_200_concurrent_calls_on_credit_for_100_never_overdraw(server, admin):
    probe = admin.post("/inference", json={"model_id": DEMO, "text": TEXT, "schema": SCHEMA}).json()
    cost = micro(probe["usage"]["cost"])
    assert cost > 0
    key = new_account(admin, "billing-rush", credit_usd=100 * cost / 1_000_000)
    client = server.client(key)
    assert balance(client) == 100 * cost

    async def fire() -> list[int]:
        async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": key}, timeout=300) as ac:
            body = {"model_id": DEMO, "text": TEXT, "schema": SCHEMA}
            responses = await asyncio.gather(*(ac.post("/inference", json=body) for _ in range(200)))
        return [r.status_code for r in responses]

    statuses = asyncio.run(fire())
    served = statuses.count(200)
    assert statuses.count(402) == 200 - served
    assert served == 100  # reservations are exact for encoders: exactly the credit's worth is served
    assert balance(client) == 100 * cost - served * cost == 0
    usage = wait_for_usage(client, served)
    assert usage["totals"]["requests"] == served
    assert usage["totals"]["cost_micro_usd"] == served * cost
    assert client.get("/credits/transactions", params={"kind": "inference"}).json()["total"] == served


def test_usage_filters_totals_and_isolation(server, admin):
    key = new_account(admin, "usage-filters")
    client = server.client(key)
    second = client.post("/keys", json={"name": "second"}).json()
    client.post("/inference", json={"model_id": DEMO, "text": TEXT, "schema": SCHEMA})
    server.client(second["key"]).post(
        "/inference", json={"model_id": DEMO, "text": "Grace works at IBM.", "schema": SCHEMA}
    )
    oa = openai.OpenAI(api_key=key, base_url=f"{server.url}/v1")
    oa.chat.completions.create(model=SMOL, messages=[{"role": "user", "content": "Hi"}], max_tokens=3)

    everything = wait_for_usage(client, 3)
    assert everything["totals"]["requests"] == 3
    assert everything["totals"]["total_tokens"] == sum(u["total_tokens"] for u in everything["data"])
    by_model = client.get("/usage", params={"model_id": SMOL}).json()
    assert by_model["totals"]["requests"] == 1 and by_model["data"][0]["surface"] == "openai"
    by_key = client.get("/usage", params={"api_key_id": second["id"]}).json()
    assert by_key["totals"]["requests"] == 1 and by_key["data"][0]["model_id"] == DEMO
    newest = everything["data"][0]["created_at"]
    assert client.get("/usage", params={"since": newest}).json()["totals"]["requests"] >= 1
    assert client.get("/usage", params={"until": "2000-01-01T00:00:00Z"}).json()["totals"]["requests"] == 0
    page = client.get("/usage", params={"limit": 1, "offset": 1}).json()
    assert len(page["data"]) == 1 and page["totals"]["requests"] == 3

    other = server.client(new_account(admin, "usage-other"))
    assert other.get("/usage").json()["totals"]["requests"] == 0
    assert [t["kind"] for t in other.get("/credits/transactions").json()["data"]] == ["grant"]
    assert other.get("/usage", params={"api_key_id": second["id"]}).json()["data"] == []


def test_grants_are_admin_only_and_validated(server, admin):
    key = new_account(admin, "grant-rules", credit_usd=None)
    client = server.client(key)
    assert client.post("/credits/grants", json={"account_name": "grant-rules", "amount_usd": 5}).status_code == 403
    assert admin.post("/credits/grants", json={"account_name": "nobody-here", "amount_usd": 5}).status_code == 404
    assert admin.post("/credits/grants", json={"account_name": "grant-rules", "amount_usd": 0}).status_code == 422
    granted = admin.post(
        "/credits/grants", json={"account_name": "grant-rules", "amount_usd": 0.123456, "description": "pilot"}
    )
    assert granted.status_code == 201
    assert granted.json()["amount_micro_usd"] == 123_456
    assert balance(client) == 123_456
    assert client.get("/credits/transactions").json()["data"][0]["description"] == "pilot"
    assert admin.get("/credits").json()["unlimited"] is True


def test_per_key_request_and_token_limits(server, admin):
    key = new_account(admin, "key-limits")
    client = server.client(key)
    rpm = client.post("/keys", json={"name": "rpm", "rpm_limit": 2}).json()
    assert rpm["rpm_limit"] == 2
    limited = server.client(rpm["key"])
    body = {"model_id": DEMO, "text": TEXT, "schema": SCHEMA}
    assert [limited.post("/inference", json=body).status_code for _ in range(2)] == [200, 200]
    refused = limited.post("/inference", json=body)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["X-RateLimit-Limit"] == "2"

    tpm = client.post("/keys", json={"name": "tpm", "tpm_limit": 5}).json()
    metered = server.client(tpm["key"])
    assert metered.post("/inference", json=body).status_code == 200  # uses more than 5 tokens
    assert metered.post("/inference", json=body).status_code == 429
    changed = client.patch(f"/keys/{tpm['id']}", json={"tpm_limit": 100_000})
    assert changed.status_code == 200 and changed.json()["tpm_limit"] == 100_000
    assert client.post("/keys", json={"name": "bad", "rpm_limit": 0}).status_code == 422
