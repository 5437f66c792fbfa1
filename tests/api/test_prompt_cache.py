"""Prompt-cache usage from upstreams on every surface: the scripted upstream's ``cached`` model reports cache reads
(OpenAI format: ``prompt_tokens_details.cached_tokens``) and reads and writes (Anthropic format:
``cache_read_input_tokens`` / ``cache_creation_input_tokens``), streamed and whole. Through the official SDKs, each
surface returns them in its own usage shape, prices them with the model's cache prices to the micro-dollar, and
the usage and history records keep them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import RunningServer, new_account
from tests.scripted_upstream import start_gateway_for
from tests.waiting import wait_until

PRICE = [1.5, 4.0, 0.15, 1.875]  # USD per million input, output, cache-read and cache-write tokens
# (prompt tokens, cache reads, cache writes, completion tokens) that each upstream format reports for "cached"
REPORTED = {"oa-cached": (11, 8, 0, 3), "an-cached": (11, 6, 2, 3)}
QUESTION = [{"role": "user", "content": "Hi"}]


def micro(model: str, price: list[float] = PRICE) -> int:
    prompt, read, write, completion = REPORTED[model]
    uncached = prompt - read - write
    return round(uncached * price[0] + read * price[2] + write * price[3] + completion * price[1])


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, base_models_dir, scripted) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("cache-gateway")
    providers = [
        {
            "name": "oa",
            "type": "openai",
            "base_url": f"{scripted.url}/v1",
            "models": [
                {"model": "cached", "id": "oa-cached", "price": PRICE},
                {"model": "cached", "id": "oa-cached-plain", "price": PRICE[:2]},
            ],
        },
        {
            "name": "an",
            "type": "anthropic",
            "base_url": scripted.url,
            "models": [{"model": "cached", "id": "an-cached", "price": PRICE}],
        },
    ]
    running = start_gateway_for(folder, base_models_dir, providers)
    yield running
    running.stop()


def check_openai_usage(usage, model: str) -> None:
    prompt, read, write, completion = REPORTED[model]
    assert (usage.prompt_tokens, usage.completion_tokens) == (prompt, completion)
    assert usage.total_tokens == prompt + completion
    assert usage.prompt_tokens_details.cached_tokens == read
    assert (usage.model_extra["cache_read_tokens"], usage.model_extra["cache_write_tokens"]) == (read, write)
    assert round(usage.model_extra["cost"] * 1e6) == micro(model)


@pytest.mark.parametrize("model", sorted(REPORTED))
def test_openai_chat_whole_and_streamed(oai, model):
    whole = oai.chat.completions.create(model=model, messages=QUESTION, max_tokens=5)
    check_openai_usage(whole.usage, model)
    chunks = list(
        oai.chat.completions.create(
            model=model, messages=QUESTION, max_tokens=5, stream=True, stream_options={"include_usage": True}
        )
    )
    assert [c.usage for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    check_openai_usage(chunks[-1].usage, model)


@pytest.mark.parametrize("model", sorted(REPORTED))
def test_openai_responses_whole_and_streamed(oai, model):
    prompt, read, write, completion = REPORTED[model]
    whole = oai.responses.create(model=model, input="Hi", max_output_tokens=5)
    streamed = [e for e in oai.responses.create(model=model, input="Hi", max_output_tokens=5, stream=True)]
    final = next(e.response for e in streamed if e.type in ("response.completed", "response.incomplete"))
    for usage in (whole.usage, final.usage):
        assert (usage.input_tokens, usage.output_tokens) == (prompt, completion)
        assert usage.input_tokens_details.cached_tokens == read
        assert usage.model_extra["cache_write_tokens"] == write
        assert round(usage.model_extra["cost"] * 1e6) == micro(model)


def check_anthropic_usage(usage, model: str, cost: float) -> None:
    prompt, read, write, completion = REPORTED[model]
    assert usage.input_tokens == prompt - read - write  # Anthropic's input_tokens leaves the cached ones out
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (read, write)
    assert usage.output_tokens == completion
    assert round(cost * 1e6) == micro(model)


@pytest.mark.parametrize("model", sorted(REPORTED))
def test_anthropic_messages_whole_and_streamed(ant, model):
    whole = ant.messages.create(model=model, max_tokens=5, messages=QUESTION)
    check_anthropic_usage(whole.usage, model, whole.usage.model_extra["cost"])
    with ant.messages.stream(model=model, max_tokens=5, messages=QUESTION) as stream:
        events = list(stream)
        final = stream.get_final_message()
    # The SDK accumulates the known usage fields; the cost extension is on the message_delta event itself.
    delta = next(e for e in events if e.type == "message_delta")
    check_anthropic_usage(final.usage, model, delta.usage.model_extra["cost"])
    start = next(e for e in events if e.type == "message_start").message.usage
    if model == "an-cached":  # an Anthropic upstream tells its cache usage before the first token
        assert (start.input_tokens, start.cache_read_input_tokens, start.cache_creation_input_tokens) == (3, 6, 2)


def test_native_inference_and_the_records(gateway):
    with gateway.client() as admin:
        key = new_account(admin, "cache-usage", credit_usd=1.0)
    with gateway.client(key) as http:
        body = {"model_id": "an-cached", "task": "generate", "messages": QUESTION, "max_tokens": 5}
        answer = http.post("/inference", json=body).json()
        assert (answer["usage"]["cache_read_tokens"], answer["usage"]["cache_write_tokens"]) == (6, 2)
        assert round(answer["usage"]["cost"] * 1e6) == micro("an-cached")
        assert http.get("/credits").json()["balance_micro_usd"] == 1_000_000 - micro("an-cached")
        usage = wait_until(lambda: (found := http.get("/usage").json())["totals"]["requests"] == 1 and found)
        record = usage["data"][0]
        assert (record["prompt_tokens"], record["cache_read_tokens"], record["cache_write_tokens"]) == (11, 6, 2)
        assert record["cost_micro_usd"] == micro("an-cached")
        assert (usage["totals"]["cache_read_tokens"], usage["totals"]["cache_write_tokens"]) == (6, 2)
        history = http.get(f"/inferences/{answer['inference_id']}").json()
        assert (history["usage"]["cache_read_tokens"], history["usage"]["cache_write_tokens"]) == (6, 2)


def test_without_cache_prices_cached_tokens_cost_the_input_price(oai, gateway):
    usage = oai.chat.completions.create(model="oa-cached-plain", messages=QUESTION, max_tokens=5).usage
    assert usage.prompt_tokens_details.cached_tokens == 8
    assert round(usage.model_extra["cost"] * 1e6) == round(11 * PRICE[0] + 3 * PRICE[1])
    with gateway.client() as admin:
        listed = {m["id"]: m for m in admin.get("/models").json()["data"]}
    assert listed["oa-cached"]["price_cache_read_per_mtok"] == PRICE[2]
    assert listed["oa-cached-plain"]["price_cache_read_per_mtok"] == PRICE[0]
