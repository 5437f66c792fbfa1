"""Rate limits per key and per account, with Retry-After and X-RateLimit-* headers, in each envelope."""

import anthropic
import httpx
import openai
import pytest

from tests.conftest import ADMIN_KEY, SMOL, make_settings, new_account, start_server

LIMITS = {"inference": "3/minute", "chat": "2/minute"}
BODY = {"model_id": "demo-extractor", "text": "David Kim works for Sony.", "schema": {"entities": ["person"]}}


@pytest.fixture(scope="module")
def limited(tmp_path_factory, base_models_dir, demo_model_dir):
    running = start_server(
        make_settings(
            tmp_path_factory.mktemp("limited"), base_models_dir, model_dirs=[demo_model_dir], rate_limits=LIMITS
        )
    )
    yield running
    running.stop()


def test_the_request_over_the_limit_is_429_with_retry_after_and_headers(limited):
    with limited.client() as admin:
        key = new_account(admin, "limited-a")
    with limited.client(key) as client:
        remaining = []
        for _ in range(3):
            response = client.post("/inference", json=BODY)
            assert response.status_code == 200
            assert response.headers["X-RateLimit-Limit"] == "3"
            remaining.append(int(response.headers["X-RateLimit-Remaining"]))
        assert remaining == [2, 1, 0]
        refused = client.post("/inference", json=BODY)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Remaining"] == "0" and int(refused.headers["X-RateLimit-Reset"]) > 0
    assert "rate limit of 3 inference requests per minute" in refused.json()["detail"]


def test_limits_hold_per_account_across_keys_and_not_across_accounts(limited):
    with limited.client() as admin:
        key_a, key_b = new_account(admin, "limited-b"), new_account(admin, "limited-c")
    with limited.client(key_a) as a:
        second_key = a.post("/keys", json={"name": "second"}).json()["key"]
        for _ in range(3):
            assert a.post("/inference", json=BODY).status_code == 200
    with limited.client(second_key) as same_account:
        response = same_account.post("/inference", json=BODY)
        assert response.status_code == 429 and "account" in response.json()["detail"]
    with limited.client(key_b) as other:
        assert other.post("/inference", json=BODY).status_code == 200
        assert other.get("/inferences").status_code == 200  # history reads are not in a limited group


def test_openai_and_anthropic_surfaces_answer_429_in_their_envelopes(limited):
    with limited.client() as admin:
        key = new_account(admin, "limited-chat")
    client = openai.OpenAI(base_url=f"{limited.url}/v1", api_key=key, max_retries=0)
    for _ in range(2):
        client.chat.completions.create(model=SMOL, messages=[{"role": "user", "content": "hi"}], max_tokens=1)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=SMOL, messages=[{"role": "user", "content": "hi"}], max_tokens=1)
    assert caught.value.body["type"] == "rate_limit_error" and caught.value.body["code"] == "rate_limited"
    assert caught.value.response.headers["Retry-After"]
    claude = anthropic.Anthropic(base_url=limited.url, api_key=key, max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(model=SMOL, max_tokens=1, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body["error"]["type"] == "rate_limit_error"


def test_streaming_responses_carry_the_rate_limit_headers(limited):
    with limited.client() as admin:
        key = new_account(admin, "limited-stream")
    body = {"model": SMOL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "stream": True}
    with httpx.stream(
        "POST", f"{limited.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as response:
        assert response.status_code == 200 and response.headers["X-RateLimit-Limit"] == "2"
        list(response.iter_lines())


def test_unknown_groups_and_bad_limits_are_refused_at_start():
    from pydantic import ValidationError

    from outrider.config import Settings

    with pytest.raises(ValidationError, match="unknown rate-limit groups"):
        Settings(rate_limits={"everything": "1/second"})
    with pytest.raises(ValidationError):
        Settings(rate_limits={"chat": "lots"})
    assert ADMIN_KEY  # the shared admin key is not limited by this module's server
