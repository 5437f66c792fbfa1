"""The OpenAI-compatible surface, driven by the official ``openai`` SDK (sync and async) over loopback."""

import json

import httpx
import jsonschema
import openai
import pytest

from tests.conftest import ADMIN_KEY, PRICES, SMOL
from tests.waiting import wait_until

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=ADMIN_KEY, max_retries=0)


@pytest.fixture
def aclient(server):
    return openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=ADMIN_KEY, max_retries=0)


def expected_cost(prompt_tokens: int, completion_tokens: int, model: str = SMOL) -> float:
    price_in, price_out = PRICES[model]
    return round(prompt_tokens * price_in + completion_tokens * price_out) / 1e6


def test_chat_completion_with_usage_and_cost(client):
    response = client.chat.completions.create(model=SMOL, messages=QUESTION, max_tokens=16, temperature=0)
    choice = response.choices[0]
    assert response.object == "chat.completion" and response.model == SMOL
    assert "Paris" in choice.message.content and choice.message.role == "assistant"
    assert choice.finish_reason in ("stop", "length")
    usage = response.usage
    assert usage.prompt_tokens > 5 and 0 < usage.completion_tokens <= 16
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.model_extra["cost"] == expected_cost(usage.prompt_tokens, usage.completion_tokens) > 0


def test_streaming_chunks_arrive_in_order_and_match_the_full_answer(client):
    full = client.chat.completions.create(model=SMOL, messages=QUESTION, max_tokens=16, temperature=0)
    stream = client.chat.completions.create(
        model=SMOL, messages=QUESTION, max_tokens=16, temperature=0, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) > 2  # token by token, not one buffered blob
    assert "".join(c.choices[0].delta.content for c in content_chunks) == full.choices[0].message.content
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == full.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == full.usage.completion_tokens
    assert chunks[-1].usage.model_extra["cost"] == full.usage.model_extra["cost"]


def raw_chat_stream(server, body):
    """The SSE response of a chat completion, read with plain httpx (no SDK parsing)."""
    return httpx.stream(
        "POST",
        f"{server.url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=120,
    )


def test_the_raw_stream_ends_with_done(server):
    body = {"model": SMOL, "messages": QUESTION, "max_tokens": 4, "stream": True}
    with raw_chat_stream(server, body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in lines)
    assert "usage" not in json.loads(lines[1][6:])  # no usage chunks without include_usage


async def test_async_client_chat_and_stream(aclient):
    response = await aclient.chat.completions.create(model=SMOL, messages=QUESTION, max_tokens=8, temperature=0)
    assert response.choices[0].message.content
    text = ""
    async for chunk in await aclient.chat.completions.create(
        model=SMOL, messages=QUESTION, max_tokens=8, temperature=0, stream=True
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    assert text == response.choices[0].message.content


def test_system_prompt_multi_turn_stop_and_max_tokens(client):
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": [{"type": "text", "text": "What is the capital of France?"}]},
    ]
    answer = client.chat.completions.create(model=SMOL, messages=messages, max_tokens=20, temperature=0)
    assert answer.usage.prompt_tokens > 30
    stopped = client.chat.completions.create(
        model=SMOL, messages=QUESTION, max_tokens=30, temperature=0, stop=["Paris"]
    )
    assert "Paris" not in stopped.choices[0].message.content and stopped.choices[0].finish_reason == "stop"
    cut = client.chat.completions.create(model=SMOL, messages=QUESTION, max_completion_tokens=3, temperature=0)
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 3


def test_n_choices_and_seeded_sampling(client):
    kwargs = {"model": SMOL, "messages": QUESTION, "max_tokens": 12, "temperature": 1.0, "seed": 7}
    two = client.chat.completions.create(n=2, **kwargs)
    assert [c.index for c in two.choices] == [0, 1]
    again = client.chat.completions.create(**kwargs)
    assert again.choices[0].message.content == client.chat.completions.create(**kwargs).choices[0].message.content


def test_logprobs_are_real_and_negative(client):
    response = client.chat.completions.create(
        model=SMOL, messages=QUESTION, max_tokens=6, temperature=0, logprobs=True, top_logprobs=3
    )
    entries = response.choices[0].logprobs.content
    assert len(entries) == response.usage.completion_tokens
    for entry in entries:
        assert entry.logprob <= 0
        assert len(entry.top_logprobs) == 3
        assert entry.top_logprobs[0].logprob >= entry.top_logprobs[-1].logprob
        assert entry.logprob <= entry.top_logprobs[0].logprob + 1e-6  # greedy picks the best
    assert "".join(e.token for e in entries) == response.choices[0].message.content


def test_json_schema_mode_output_validates(client):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 30}, "population_millions": {"type": "number"}},
        "required": ["city", "population_millions"],
        "additionalProperties": False,
    }
    response = client.chat.completions.create(
        model=SMOL,
        messages=[{"role": "user", "content": "Describe Paris as JSON."}],
        max_tokens=100,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}},
    )
    assert response.choices[0].finish_reason == "stop"  # the constraint closed the JSON before the limit
    jsonschema.validate(json.loads(response.choices[0].message.content), schema)
    loose = client.chat.completions.create(
        model=SMOL,
        messages=[{"role": "user", "content": "Give me a JSON object about a cat."}],
        max_tokens=60,
        temperature=0,
        response_format={"type": "json_object"},
    )
    assert loose.choices[0].finish_reason == "stop", loose.choices[0].message.content
    assert isinstance(json.loads(loose.choices[0].message.content), dict)


@pytest.mark.parametrize(
    "schema",
    [{"$ref": "#"}, {"$ref": "#/$defs/loop", "$defs": {"loop": {"$ref": "#/$defs/loop"}}}, {"enum": []}],
    ids=["self-ref", "defs-loop", "empty-enum"],
)
def test_a_schema_no_json_matches_is_a_short_422_not_a_grammar_dump(client, schema):
    """Issue #15 item 7: valid JSON Schema that constrained decoding can never satisfy was a 502 carrying
    ~600 characters of llguidance's parser state and grammar; it is the client's error."""
    response_format = {"type": "json_schema", "json_schema": {"name": "loop", "schema": schema}}
    calls = [
        lambda: client.chat.completions.create(
            model=SMOL, messages=QUESTION, max_tokens=8, response_format=response_format
        ),
        lambda: client.chat.completions.create(
            model=SMOL, messages=QUESTION, max_tokens=8, response_format=response_format, stream=True
        ),
        lambda: client.responses.create(
            model=SMOL,
            input="Hi",
            max_output_tokens=8,
            text={"format": {"type": "json_schema", "name": "loop", "schema": schema}},
        ),
    ]
    for call in calls:
        with pytest.raises(openai.UnprocessableEntityError) as caught:
            call()
        error = caught.value.body
        assert error["type"] == "invalid_request_error" and error["param"] == "response_format"
        assert "response_format" in error["message"] and len(error["message"]) <= 200, error["message"]
        assert "<state>" not in error["message"] and "grammar" not in error["message"]


def test_schema_extraction_through_extra_body(client):
    response = client.chat.completions.create(
        model="demo-extractor",
        messages=[{"role": "user", "content": "Laura Rossi works for Uber in Madrid."}],
        extra_body={"schema": {"entities": ["person", "company"]}},
    )
    result = json.loads(response.choices[0].message.content)
    assert result["entities"]["person"] == ["Laura Rossi"]
    assert response.usage.prompt_tokens > 5 and response.usage.completion_tokens == 0
    stream = client.chat.completions.create(
        model="demo-extractor",
        messages=[{"role": "user", "content": "Laura Rossi works for Uber in Madrid."}],
        extra_body={"schema": {"entities": ["person"]}},
        stream=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert json.loads(text)["entities"]["person"] == ["Laura Rossi"]


def test_completions_with_logprobs_and_streaming(client):
    response = client.completions.create(
        model=SMOL, prompt="The capital of France is", max_tokens=5, temperature=0, logprobs=2
    )
    choice = response.choices[0]
    assert response.object == "text_completion" and choice.text
    assert all(lp <= 0 for lp in choice.logprobs.token_logprobs) and len(choice.logprobs.top_logprobs[0]) == 2
    assert response.usage.model_extra["cost"] > 0
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(
            model=SMOL, prompt="The capital of France is", max_tokens=5, temperature=0, stream=True
        )
        if c.choices
    )
    assert streamed == choice.text


def test_responses_api_plain_and_streaming(client):
    response = client.responses.create(
        model=SMOL,
        input="What is the capital of France?",
        max_output_tokens=16,
        temperature=0,
        instructions="Answer in one sentence.",
    )
    assert response.status in ("completed", "incomplete") and response.output_text
    assert response.usage.input_tokens > 5 and response.usage.output_tokens > 0
    events = list(
        client.responses.create(
            model=SMOL,
            input="What is the capital of France?",
            max_output_tokens=16,
            temperature=0,
            instructions="Answer in one sentence.",
            stream=True,
        )
    )
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == response.output_text


def test_models_list_and_retrieve(client):
    ids = [m.id for m in client.models.list()]
    assert SMOL in ids and "demo-extractor" in ids
    assert client.models.retrieve(SMOL).id == SMOL
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("nope/nothing")
    assert caught.value.body["type"] == "not_found_error" or caught.value.body.get("code") == "model_not_found"


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"max_tokens": -1}, "max_tokens"),
        ({"temperature": 3.0}, "temperature"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}, "messages"),
        ({"top_logprobs": 50, "logprobs": True}, "top_logprobs"),
    ],
)
def test_invalid_parameters_are_422_in_the_openai_envelope(client, kwargs, param):
    request = {"model": SMOL, "messages": QUESTION, "max_tokens": 4, **kwargs}
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.chat.completions.create(**request)
    error = caught.value.body
    assert caught.value.status_code == 422 and error["type"] == "invalid_request_error"
    assert param in (error["param"] or "") and param in error["message"]


def test_unknown_model_bad_key_and_wrong_family(server, client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no/such", messages=QUESTION)
    assert caught.value.body["code"] == "model_not_found"
    bad = openai.OpenAI(base_url=f"{server.url}/v1", api_key="ork_wrong_key_000000000000000", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.chat.completions.create(model=SMOL, messages=QUESTION)
    assert caught.value.body["type"] == "authentication_error"
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.chat.completions.create(model="demo-extractor", messages=QUESTION)
    assert "encoder" in caught.value.body["message"]


def test_every_call_is_recorded_with_its_surface(admin, client):
    response = client.chat.completions.create(model=SMOL, messages=QUESTION, max_tokens=3, temperature=0)
    records = admin.get("/inferences", params={"model_id": SMOL, "limit": 1}).json()["inferences"]
    record = records[0]
    assert record["surface"] == "openai" and record["task"] == "generate"
    assert record["output"]["completion"] == response.choices[0].message.content
    assert record["usage"]["cost"] == response.usage.model_extra["cost"]


def test_a_client_that_disconnects_stops_generation_and_is_recorded(server, admin):
    body = {
        "model": SMOL,
        "messages": [{"role": "user", "content": "Write a very long story about a dragon."}],
        "max_tokens": 400,
        "temperature": 0,
        "stream": True,
    }
    with raw_chat_stream(server, body) as response:
        for index, _ in enumerate(response.iter_lines()):
            if index > 6:
                break

    def recorded() -> dict | None:
        record = admin.get("/inferences", params={"model_id": SMOL, "limit": 1}).json()["inferences"][0]
        return record if record["input"].get("max_tokens") == 400 else None

    record = wait_until(recorded, 30, 0.2, "the dropped stream's record")
    assert record["status"] == "cancelled" and record["output"]["finish_reason"] == "cancelled"
    assert 0 < record["usage"]["completion_tokens"] < 400


async def test_concurrent_requests_are_decoded_in_one_batch(server, aclient):
    import asyncio

    await aclient.chat.completions.create(model=SMOL, messages=QUESTION, max_tokens=1)  # loaded
    engine = server.services.registry._loaded[SMOL].model.engine
    before = len(engine.batch_sizes)
    prompts = ["Name a fruit.", "Name a colour.", "Name a planet.", "Name a river."]
    replies = await asyncio.gather(
        *(
            aclient.chat.completions.create(
                model=SMOL, messages=[{"role": "user", "content": p}], max_tokens=8, temperature=0
            )
            for p in prompts
        )
    )
    assert all(r.choices[0].message.content for r in replies)
    assert max(list(engine.batch_sizes)[before:]) > 1  # several requests shared the decode loop
