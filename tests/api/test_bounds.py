"""Issue #15 item 6: integers that reached SQLite or torch unbounded (an ``offset`` past 2^63 was an
``OverflowError`` 500, and the next request on the same keep-alive connection sometimes an ``ECONNRESET``;
a ``seed`` past 2^64 failed in the sampler). Each is now a 422 naming the field, and the connection keeps
serving."""

from __future__ import annotations

import json

import openai
import pytest

from outrider.api.paging import MAX_OFFSET
from tests.conftest import ADMIN_KEY, SMOL, new_account

HUGE = 9223372036854775808  # 2**63: one past SQLite's largest integer

LISTS = [
    "/inferences",
    "/usage",
    "/credits/transactions",
    "/generate/jobs",
    "/felix/training-jobs",
    "/datasets/bounded/versions/1/examples",
]


@pytest.fixture(scope="module")
def account_key(server, admin) -> str:
    key = new_account(admin, "bounds")
    with server.client(key) as client:
        body = json.dumps({"text": "The kettle broke.", "label": "negative"}) + "\n"
        uploaded = client.post("/datasets", params={"name": "bounded", "task_type": "classification"}, content=body)
        assert uploaded.status_code == 201, uploaded.text
    return key


def offset_errors(response) -> list[dict]:
    return [e for e in response.json()["detail"] if e["loc"][-1] == "offset"]


@pytest.mark.parametrize("path", LISTS)
def test_a_huge_offset_is_a_422_naming_it_and_the_connection_keeps_serving(server, account_key, path):
    with server.client(account_key) as client:
        for offset in (HUGE, MAX_OFFSET + 1, -1):
            refused = client.get(path, params={"offset": offset})
            assert refused.status_code == 422, refused.text
            assert offset_errors(refused), refused.json()  # the native envelope, naming the field
        # The same keep-alive connection answers the next requests normally, the largest offset included.
        assert client.get(path, params={"offset": MAX_OFFSET}).status_code == 200
        page = client.get(path)
        assert page.status_code == 200, page.text
        assert page.json()["offset"] == 0


def test_an_inference_seed_past_64_bits_is_a_422_naming_it(server, admin):
    body = {"model_id": SMOL, "task": "generate", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    for seed in (2**64, 2**63, -(2**63) - 1):
        refused = admin.post("/inference", json={**body, "seed": seed})
        assert refused.status_code == 422, refused.text
        assert any(e["loc"][-1] == "seed" for e in refused.json()["detail"]), refused.json()
    assert admin.post("/inference", json={**body, "seed": 2**63 - 1}).status_code == 200


def test_an_openai_seed_past_64_bits_is_a_422_naming_it(server):
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=ADMIN_KEY, max_retries=0)
    messages = [{"role": "user", "content": "Hi"}]
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        client.chat.completions.create(model=SMOL, messages=messages, max_tokens=1, seed=2**64)
    assert refused.value.body["param"] == "seed", refused.value.body
    answer = client.chat.completions.create(model=SMOL, messages=messages, max_tokens=1, seed=-(2**63))
    assert answer.choices[0].message is not None
