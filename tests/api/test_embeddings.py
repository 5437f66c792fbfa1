"""``POST /v1/embeddings`` with the packaged all-MiniLM-L6-v2, through the official OpenAI SDK on loopback: vectors
equal to sentence-transformers-style mean pooling computed here with ``transformers``, float and base64, errors
in OpenAI's envelope, micro-batching, credits, usage records, key pools and rate limits."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import openai
import pytest

from outrider.backends.embedding_minilm import MINILM_EMBEDDING_ID as MINILM
from outrider.backends.encoder_gliner import minilm_encoder_dir
from tests.conftest import ADMIN_KEY, PRICES, SMOL, new_account
from tests.waiting import wait_until

TEXTS = [
    "The cat sits on the mat.",
    "Une phrase en français, avec des accents.",
    "Rust and Python 🐍 both have package managers",
    "short",
    "x " * 400,  # 400 words: past the model's 256 tokens, so truncated
]


def reference(texts: list[str]) -> tuple[np.ndarray, list[int]]:
    """Mean pooling over the attention mask, L2-normalised, each text alone (no padding): sentence-transformers'
    recipe for all-MiniLM-L6-v2 (max_seq_length 256), computed with transformers directly."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_encoder_dir()))
    model = AutoModel.from_pretrained(str(minilm_encoder_dir())).eval()
    vectors, counts = [], []
    with torch.no_grad():
        for text in texts:
            batch = tokenizer([text], truncation=True, max_length=256, return_tensors="pt")
            hidden = model(**batch).last_hidden_state[0]
            pooled = hidden.mean(dim=0)  # one text, no padding: every position counts
            vectors.append((pooled / pooled.norm()).numpy())
            counts.append(batch["input_ids"].shape[1])
    return np.stack(vectors), counts


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=ADMIN_KEY, max_retries=0)


@pytest.fixture(scope="module")
def expected() -> tuple[np.ndarray, list[int]]:
    return reference(TEXTS)


def test_vectors_equal_mean_pooling_computed_with_transformers(client, expected):
    vectors, counts = expected
    answer = client.embeddings.create(model=MINILM, input=TEXTS, encoding_format="float")
    got = np.array([item.embedding for item in answer.data])
    assert [item.index for item in answer.data] == list(range(len(TEXTS)))
    assert got.shape == (len(TEXTS), 384)
    assert np.abs(got - vectors).max() < 1e-5
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert counts[-1] == 256  # the long text was read up to the model's limit, and billed for that
    assert answer.usage.prompt_tokens == answer.usage.total_tokens == sum(counts)
    assert answer.model == MINILM
    price_in = PRICES[MINILM][0]
    assert round(answer.usage.model_extra["cost"] * 1e6) == round(sum(counts) * price_in)


def test_base64_and_the_sdk_default_decode_to_the_same_vectors(client, expected):
    vectors, _ = expected
    # Without encoding_format the SDK asks for base64 and decodes it itself (numpy float32).
    default = client.embeddings.create(model=MINILM, input=TEXTS)
    assert np.abs(np.array([item.embedding for item in default.data]) - vectors).max() < 1e-5
    raw = client.embeddings.create(model=MINILM, input=TEXTS[0], encoding_format="base64")
    assert len(raw.data) == 1 and isinstance(raw.data[0].embedding, str)
    decoded = np.frombuffer(base64.b64decode(raw.data[0].embedding), dtype="<f4")
    assert decoded.shape == (384,) and np.abs(decoded - vectors[0]).max() < 1e-5


def test_the_same_text_gives_the_same_vector_alone_or_in_a_batch_of_any_size(client):
    lone = client.embeddings.create(model=MINILM, input="a cat", encoding_format="float").data[0].embedding
    many = client.embeddings.create(model=MINILM, input=["a cat", "x " * 300] * 40, encoding_format="float")
    assert len(many.data) == 80  # more than one pass (32 texts) of the micro-batcher
    assert all(np.abs(np.array(item.embedding) - lone).max() < 1e-5 for item in many.data[::2])


def test_concurrent_requests_share_forward_passes(server, client):
    batcher = server.services.registry._loaded[MINILM].batcher  # loaded by the tests above
    before = batcher.passes
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda i: client.embeddings.create(model=MINILM, input=f"text {i}"), range(64)))
    assert all(len(a.data[0].embedding) == 384 for a in answers)
    assert batcher.passes - before < 64


def refused(response: httpx.Response, status: int, param: str | None, *words: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" or status != 422
    assert error["param"] == param, error
    for word in words:
        assert word in error["message"], error["message"]


def test_invalid_requests_are_refused_in_openais_envelope(server, admin):
    def post(body: dict) -> httpx.Response:
        return admin.post("/v1/embeddings", json={"model": MINILM, **body})

    refused(post({"input": ""}), 422, "input", "input[0] is an empty string")
    refused(post({"input": []}), 422, "input", "must not be empty")
    refused(post({"input": ["ok", ""]}), 422, "input", "input[1]")
    too_many = server.settings.embedding_max_inputs + 1
    refused(post({"input": ["a"] * too_many}), 422, "input", f"got {too_many}")
    refused(post({"input": "a" * (server.settings.max_text_chars + 1)}), 422, "input", "characters")
    refused(post({"input": [101, 2023, 102]}), 422, "input", "token ids")
    refused(post({"input": [[101, 2023, 102]]}), 422, "input", "token ids")
    refused(post({"input": "hi", "dimensions": 128}), 422, "dimensions", "384-dimensional")
    refused(post({"input": "hi", "dimensions": 0}), 422, "dimensions")
    refused(post({"input": "hi", "encoding_format": "int8"}), 422, "encoding_format")
    refused(post({"input": {"text": "hi"}}), 422, "input")
    lone_surrogate = '{"model": "' + MINILM + '", "input": "bad \\ud800 text"}'
    bad = admin.post("/v1/embeddings", content=lone_surrogate, headers={"Content-Type": "application/json"})
    assert bad.status_code == 422 and "input" in bad.json()["error"]["param"]
    assert post({"input": "hi", "dimensions": 384}).status_code == 200  # the model's own size is fine
    refused(admin.post("/v1/embeddings", json={"model": "nope", "input": "hi"}), 404, "model", "not found")
    refused(admin.post("/v1/embeddings", json={"model": SMOL, "input": "hi"}), 422, "model", "decoder model")
    chat = admin.post("/v1/chat/completions", json={"model": MINILM, "messages": [{"role": "user", "content": "hi"}]})
    refused(chat, 422, "model", "POST /v1/embeddings")
    assert server.client(None).post("/v1/embeddings", json={"model": MINILM, "input": "hi"}).status_code == 401


def test_listed_with_their_kind(client, admin):
    listed = {m.id: m for m in client.models.list()}
    assert listed[MINILM].model_extra["kind"] == "embedding"
    assert listed[SMOL].model_extra["kind"] == "decoder"
    assert client.models.retrieve(MINILM).model_extra["kind"] == "embedding"
    native = {m["id"]: m for m in admin.get("/models").json()["data"]}
    assert native[MINILM]["task_family"] == "embedding"
    assert MINILM not in {m["id"] for m in admin.get("/base-models").json()["models"]}


def test_credits_usage_records_and_history(server, admin):
    key = new_account(admin, "embeddings-billing", credit_usd=1.0)
    client = server.client(key)
    sdk = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
    answer = sdk.embeddings.create(model=MINILM, input=["one text", "and another one"])
    cost = round(answer.usage.prompt_tokens * PRICES[MINILM][0])
    assert cost > 0
    assert client.get("/credits").json()["balance_micro_usd"] == 1_000_000 - cost
    charges = client.get("/credits/transactions", params={"kind": "inference"}).json()["data"]
    assert [-t["amount_micro_usd"] for t in charges] == [cost]
    usage = wait_until(lambda: (body := client.get("/usage").json())["totals"]["requests"] == 1 and body)
    record = usage["data"][0]
    assert (record["model_id"], record["surface"], record["status"]) == (MINILM, "openai", "success")
    assert (record["prompt_tokens"], record["completion_tokens"], record["cost_micro_usd"]) == (
        answer.usage.prompt_tokens,
        0,
        cost,
    )
    history = client.get("/inferences").json()["inferences"]
    assert history[0]["input"]["input"] == ["one text", "and another one"]
    assert history[0]["output"] == {"embeddings": 2, "dimensions": 384}
    unstored = sdk.embeddings.create(model=MINILM, input="not kept", extra_body={"store": False})
    assert len(unstored.data) == 1
    wait_until(lambda: client.get("/usage").json()["totals"]["requests"] == 2)
    assert len(client.get("/inferences").json()["inferences"]) == 1


def test_a_call_the_balance_cannot_cover_is_402_with_nothing_charged(server, admin):
    key = new_account(admin, "embeddings-poor", credit_usd=0.000001)  # one micro-dollar
    client = server.client(key)
    response = client.post("/v1/embeddings", json={"model": MINILM, "input": "a fairly long sentence " * 20})
    assert response.status_code == 402 and response.json()["error"]["type"] == "insufficient_quota"
    assert client.get("/credits").json()["balance_micro_usd"] == 1
    assert client.get("/credits").json()["reserved_micro_usd"] == 0


def test_key_pools_and_rate_limits_apply(server, admin):
    key = new_account(admin, "embeddings-keys", credit_usd=1.0)
    owner = server.client(key)
    pooled = owner.post("/keys", json={"name": "chat-only", "model_pool": [SMOL]}).json()["key"]
    refused(server.client(pooled).post("/v1/embeddings", json={"model": MINILM, "input": "hi"}), 403, "model")
    limited = owner.post("/keys", json={"name": "slow", "rpm_limit": 2}).json()["key"]
    statuses = [
        server.client(limited).post("/v1/embeddings", json={"model": MINILM, "input": "hi"}).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]


def test_the_float_answer_is_plain_json(admin):
    body = admin.post("/v1/embeddings", json={"model": MINILM, "input": ["a", "b"]}).json()
    assert body["object"] == "list" and body["model"] == MINILM
    assert [d["object"] for d in body["data"]] == ["embedding", "embedding"]
    assert set(body["usage"]) == {"prompt_tokens", "total_tokens", "cost"}
    json.dumps(body)  # floats, not numpy values
