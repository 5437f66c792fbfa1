"""The Anthropic-compatible surface, driven by the official ``anthropic`` SDK (sync and async) over loopback."""

import json

import anthropic
import httpx
import pytest

from tests.conftest import ADMIN_KEY, PRICES, SMOL

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def client(server):
    return anthropic.Anthropic(base_url=server.url, api_key=ADMIN_KEY, max_retries=0)


def test_message_with_usage_cost_and_stop_reason(client):
    message = client.messages.create(model=SMOL, max_tokens=16, messages=QUESTION, extra_body={"temperature": 0})
    assert message.type == "message" and message.role == "assistant" and message.model == SMOL
    assert message.content[0].type == "text" and "Paris" in message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens") and message.stop_sequence is None
    usage = message.usage
    assert usage.input_tokens > 5 and 0 < usage.output_tokens <= 16
    price_in, price_out = PRICES[SMOL]
    assert usage.model_extra["cost"] == round(usage.input_tokens * price_in + usage.output_tokens * price_out) / 1e6


def test_system_prompt_content_blocks_and_stop_sequences(client):
    message = client.messages.create(
        model=SMOL,
        max_tokens=30,
        extra_body={"temperature": 0},
        messages=[{"role": "user", "content": [{"type": "text", "text": "What is the capital of France?"}]}],
        stop_sequences=["Paris"],
    )
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "Paris"
    assert "Paris" not in message.content[0].text
    tutor = client.messages.create(
        model=SMOL,
        max_tokens=1,
        extra_body={"temperature": 0},
        messages=QUESTION,
        system=[{"type": "text", "text": "You are a geography tutor."}],
    )
    assert tutor.usage.input_tokens != message.usage.input_tokens  # the system prompt reached the model
    short = client.messages.create(model=SMOL, max_tokens=2, messages=QUESTION, extra_body={"temperature": 0})
    assert short.stop_reason == "max_tokens" and short.usage.output_tokens == 2


def test_the_stream_is_the_full_anthropic_event_sequence(client):
    full = client.messages.create(model=SMOL, max_tokens=12, messages=QUESTION, extra_body={"temperature": 0})
    with client.messages.stream(model=SMOL, max_tokens=12, messages=QUESTION, extra_body={"temperature": 0}) as stream:
        events = list(stream)
        final = stream.get_final_message()
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    deltas = [e for e in events if e.type == "content_block_delta"]
    assert len(deltas) > 2 and all(d.delta.type == "text_delta" for d in deltas)
    assert "".join(d.delta.text for d in deltas) == full.content[0].text == final.content[0].text
    message_delta = next(e for e in events if e.type == "message_delta")
    assert message_delta.delta.stop_reason == full.stop_reason
    assert message_delta.usage.output_tokens == full.usage.output_tokens


def test_raw_stream_names_every_event(server):
    body = {"model": SMOL, "max_tokens": 3, "messages": QUESTION, "stream": True}
    with httpx.stream(
        "POST", f"{server.url}/v1/messages", json=body, headers={"x-api-key": ADMIN_KEY}, timeout=120
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    names = [line.split(": ", 1)[1] for line in lines if line.startswith("event: ")]
    datas = [json.loads(line.split(": ", 1)[1]) for line in lines if line.startswith("data: ")]
    assert names == [d["type"] for d in datas]
    assert names[0] == "message_start" and names[-1] == "message_stop"


async def test_async_client(server):
    client = anthropic.AsyncAnthropic(base_url=server.url, api_key=ADMIN_KEY, max_retries=0)
    message = await client.messages.create(model=SMOL, max_tokens=8, messages=QUESTION, extra_body={"temperature": 0})
    text = ""
    async with client.messages.stream(
        model=SMOL, max_tokens=8, messages=QUESTION, extra_body={"temperature": 0}
    ) as stream:
        async for piece in stream.text_stream:
            text += piece
    assert text == message.content[0].text


def test_schema_extraction_through_extra_body(client):
    message = client.messages.create(
        model="demo-extractor",
        max_tokens=100,
        messages=[{"role": "user", "content": "Aisha Bello works for Zoom in Denver."}],
        extra_body={"schema": {"entities": ["person", "company"]}},
    )
    assert json.loads(message.content[0].text)["entities"]["person"] == ["Aisha Bello"]


def test_errors_use_the_anthropic_envelope(server, client):
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="no/such", max_tokens=5, messages=QUESTION)
    assert caught.value.body["type"] == "error" and caught.value.body["error"]["type"] == "not_found_error"
    bad = anthropic.Anthropic(base_url=server.url, api_key="ork_wrong_key_000000000000000", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model=SMOL, max_tokens=5, messages=QUESTION)
    for body, field in (
        ({"model": SMOL, "messages": QUESTION}, "max_tokens"),
        ({"model": SMOL, "max_tokens": -5, "messages": QUESTION}, "max_tokens"),
        ({"model": SMOL, "max_tokens": 5, "messages": QUESTION, "temperature": 1.5}, "temperature"),
        ({"model": SMOL, "max_tokens": 5, "messages": []}, "messages"),
        (
            {"model": SMOL, "max_tokens": 5, "messages": [*QUESTION, {"role": "assistant", "content": "Par"}]},
            "messages",
        ),
    ):
        response = httpx.post(f"{server.url}/v1/messages", json=body, headers={"x-api-key": ADMIN_KEY}, timeout=60)
        assert response.status_code == 422, body
        error = response.json()
        assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
        assert field in error["error"]["message"]
