"""Upstream models on every surface: a second Outrider instance serving SmolLM2 is the upstream, declared
twice in the gateway's providers file, as an OpenAI-compatible provider (its /v1/chat/completions and
/v1/completions) and as an Anthropic provider (its /v1/messages). The gateway's OpenAI surface reaches the
Anthropic-format upstream and its Anthropic surface the OpenAI-format one, through the official SDKs,
streaming and not; every answer is compared with the same request sent to the upstream directly."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from tests.conftest import ADMIN_KEY, GENEROUS_LIMITS, PRICES, SMOL, RunningServer, make_settings, start_server

VIA_OPENAI = f"up-openai/{SMOL}"  # the default id: "<provider>/<upstream model>"
VIA_ANTHROPIC = "smol-via-anthropic"  # an explicit id
DECLARED = {VIA_OPENAI: (2.0, 4.0), VIA_ANTHROPIC: (3.0, 6.0)}  # USD per million tokens, unlike the upstream's
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
GREEDY = {"max_tokens": 8, "temperature": 0}
GREEDY_ANTHROPIC = {"max_tokens": 8, "extra_body": {"temperature": 0}}  # the SDK has no sampling arguments
STORY = "Write a long story about a dragon."  # never finished within 8 tokens


@pytest.fixture(scope="module")
def upstream(tmp_path_factory, base_models_dir) -> Iterator[RunningServer]:
    settings = make_settings(
        tmp_path_factory.mktemp("upstream-data"), base_models_dir, model_prices=PRICES, rate_limits=GENEROUS_LIMITS
    )
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, base_models_dir, upstream) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("gateway-data")
    providers = folder / "providers.yaml"
    providers.write_text(
        f"""
providers:
  - name: up-openai
    type: openai
    base_url: {upstream.url}/v1
    api_key_env: OUTRIDER_TEST_UPSTREAM_KEY
    models:
      - model: {SMOL}
        price: {list(DECLARED[VIA_OPENAI])}
        context_length: 2048
        capabilities: [chat, completions, json, tools]
  - name: up-anthropic
    type: anthropic
    base_url: {upstream.url}
    api_key_env: OUTRIDER_TEST_UPSTREAM_KEY
    models:
      - model: {SMOL}
        id: {VIA_ANTHROPIC}
        price: {list(DECLARED[VIA_ANTHROPIC])}
        capabilities: [chat, tools]
"""
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OUTRIDER_TEST_UPSTREAM_KEY", ADMIN_KEY)  # read once, when the gateway starts
        running = start_server(
            make_settings(folder, base_models_dir, providers_file=providers, rate_limits=GENEROUS_LIMITS)
        )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def direct_oai(upstream) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{upstream.url}/v1", api_key=ADMIN_KEY, max_retries=0)


@pytest.fixture(scope="module")
def direct_ant(upstream) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=upstream.url, api_key=ADMIN_KEY, max_retries=0)


def declared_cost(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    price_in, price_out = DECLARED[model]
    return round(prompt_tokens * price_in + completion_tokens * price_out) / 1e6


def test_upstream_models_are_listed_next_to_local_ones(gateway, oai):
    listed = {m.id: m for m in oai.models.list()}
    assert SMOL in listed and listed[SMOL].owned_by == "outrider"
    assert listed[VIA_OPENAI].owned_by == "up-openai" and listed[VIA_ANTHROPIC].owned_by == "up-anthropic"
    assert oai.models.retrieve(VIA_ANTHROPIC).owned_by == "up-anthropic"
    with gateway.client() as client:
        native = {m["id"]: m for m in client.get("/models").json()["data"]}
        one = client.get(f"/models/{VIA_OPENAI}").json()
    assert one == native[VIA_OPENAI]
    assert one["source"] == "upstream" and one["task_family"] == "decoder" and one["owned_by"] == "up-openai"
    assert (one["price_input_per_mtok"], one["price_output_per_mtok"]) == DECLARED[VIA_OPENAI]
    assert one["context_length"] == 2048 and one["capabilities"] == ["chat", "completions", "json", "tools"]
    assert native[VIA_ANTHROPIC]["capabilities"] == ["chat", "tools"]
    assert native[VIA_ANTHROPIC]["context_length"] is None


def test_health_probes_each_upstream(gateway):
    with gateway.client() as client:
        for model in (VIA_OPENAI, VIA_ANTHROPIC):
            report = client.get(f"/models/{model}/health").json()
            assert report == {"model": model, "status": "ready", "reason": None, "runtime": None}


def test_openai_surface_reaches_the_anthropic_upstream(oai, direct_oai):
    reply = oai.chat.completions.create(model=VIA_ANTHROPIC, messages=QUESTION, **GREEDY)
    direct = direct_oai.chat.completions.create(model=SMOL, messages=QUESTION, **GREEDY)
    assert reply.model == VIA_ANTHROPIC and reply.choices[0].message.content == direct.choices[0].message.content
    assert reply.choices[0].finish_reason == direct.choices[0].finish_reason
    usage = reply.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        direct.usage.prompt_tokens,
        direct.usage.completion_tokens,
    )
    assert usage.model_extra["cost"] == declared_cost(VIA_ANTHROPIC, usage.prompt_tokens, usage.completion_tokens) > 0
    assert usage.model_extra["cost"] != direct.usage.model_extra["cost"]  # the gateway's price, not the upstream's


def test_openai_surface_streams_from_the_anthropic_upstream(oai):
    full = oai.chat.completions.create(model=VIA_ANTHROPIC, messages=QUESTION, **GREEDY)
    chunks = list(
        oai.chat.completions.create(
            model=VIA_ANTHROPIC, messages=QUESTION, stream=True, stream_options={"include_usage": True}, **GREEDY
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content and len([c for c in chunks if c.choices]) > 3
    assert chunks[-1].usage.prompt_tokens == full.usage.prompt_tokens
    assert chunks[-1].usage.model_extra["cost"] == full.usage.model_extra["cost"]


def test_anthropic_surface_reaches_the_openai_upstream(ant, direct_ant):
    system = "You are a geography tutor."
    message = ant.messages.create(model=VIA_OPENAI, system=system, messages=QUESTION, **GREEDY_ANTHROPIC)
    direct = direct_ant.messages.create(model=SMOL, system=system, messages=QUESTION, **GREEDY_ANTHROPIC)
    assert message.model == VIA_OPENAI and message.content[0].text == direct.content[0].text
    assert message.stop_reason == direct.stop_reason
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (direct.usage.input_tokens, direct.usage.output_tokens)
    assert usage.model_extra["cost"] == declared_cost(VIA_OPENAI, usage.input_tokens, usage.output_tokens) > 0
    cut = ant.messages.create(model=VIA_OPENAI, messages=[{"role": "user", "content": STORY}], **GREEDY_ANTHROPIC)
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 8


def test_anthropic_surface_streams_from_the_openai_upstream(ant):
    full = ant.messages.create(model=VIA_OPENAI, messages=QUESTION, **GREEDY_ANTHROPIC)
    with ant.messages.stream(model=VIA_OPENAI, messages=QUESTION, **GREEDY_ANTHROPIC) as stream:
        events = list(stream)
        final = stream.get_final_message()
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert kinds.count("content_block_delta") > 3
    assert final.content[0].text == full.content[0].text and final.stop_reason == full.stop_reason
    assert final.usage.output_tokens == full.usage.output_tokens
    assert events[-2].usage.model_extra["cost"] == full.usage.model_extra["cost"]


def test_completions_surface_on_both_upstreams(oai, direct_oai):
    prompt = "The capital of France is"
    reply = oai.completions.create(model=VIA_OPENAI, prompt=prompt, **GREEDY)
    direct = direct_oai.completions.create(model=SMOL, prompt=prompt, **GREEDY)
    assert reply.choices[0].text == direct.choices[0].text  # the upstream's raw /v1/completions
    assert reply.usage.prompt_tokens == direct.usage.prompt_tokens
    # Anthropic has no raw completions: the prompt goes as one user message.
    as_chat = oai.completions.create(model=VIA_ANTHROPIC, prompt=prompt, **GREEDY)
    chat = oai.chat.completions.create(model=VIA_ANTHROPIC, messages=[{"role": "user", "content": prompt}], **GREEDY)
    assert as_chat.choices[0].text == chat.choices[0].message.content
    streamed = oai.completions.create(model=VIA_OPENAI, prompt=prompt, stream=True, **GREEDY)
    assert "".join(c.choices[0].text for c in streamed if c.choices) == reply.choices[0].text


def test_responses_surface_streaming_and_not(oai):
    response = oai.responses.create(model=VIA_OPENAI, input=STORY, max_output_tokens=8, temperature=0)
    assert response.status == "incomplete" and response.output_text and response.usage.output_tokens == 8
    with oai.responses.stream(model=VIA_ANTHROPIC, input=QUESTION, max_output_tokens=8, temperature=0) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text and final.usage.output_tokens == 8


def test_json_mode_reaches_the_openai_upstream_as_response_format(oai):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    reply = oai.chat.completions.create(
        model=VIA_OPENAI,
        messages=QUESTION,
        max_tokens=24,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
    )
    assert set(json.loads(reply.choices[0].message.content)) == {"city"}  # constrained by the upstream
    with pytest.raises(openai.UnprocessableEntityError, match="'json' capability"):  # VIA_ANTHROPIC: chat, tools
        oai.chat.completions.create(
            model=VIA_ANTHROPIC, messages=QUESTION, max_tokens=8, response_format={"type": "json_object"}
        )


def test_native_generate_and_history_on_an_upstream_model(gateway):
    body = {"model_id": VIA_ANTHROPIC, "task": "generate", "messages": QUESTION, **GREEDY}
    with gateway.client() as client:
        reply = client.post("/inference", json=body)
        assert reply.status_code == 200, reply.text
        data = reply.json()
        assert data["type"] == "decoder" and data["model_used"] == VIA_ANTHROPIC and data["completion"]
        usage = data["usage"]
        assert usage["completion_tokens"] > 0 and usage["prompt_tokens"] > 0
        assert usage["cost"] == declared_cost(VIA_ANTHROPIC, usage["prompt_tokens"], usage["completion_tokens"])
        record = client.get(f"/inferences/{data['inference_id']}").json()
    assert record["model_id"] == VIA_ANTHROPIC and record["output"]["completion"] == data["completion"]


def test_several_choices_are_several_upstream_calls(oai):
    reply = oai.chat.completions.create(model=VIA_OPENAI, messages=QUESTION, n=2, max_tokens=4, temperature=0)
    assert reply.choices[0].finish_reason == "length"
    assert [c.index for c in reply.choices] == [0, 1]
    assert reply.choices[0].message.content == reply.choices[1].message.content  # greedy twice
    assert reply.usage.completion_tokens == 8  # the prompt is billed once, as OpenAI does


def test_the_upstream_key_comes_from_the_declared_variable(upstream, gateway):
    # The upstream is a real Outrider: a gateway without the key would be refused with 401 (mapped to 502).
    with httpx.Client(base_url=upstream.url) as client:
        refused = client.post("/v1/chat/completions", json={"model": SMOL, "messages": QUESTION, "max_tokens": 1})
    assert refused.status_code == 401
    with gateway.client() as client:
        accepted = client.post(
            "/v1/chat/completions", json={"model": VIA_OPENAI, "messages": QUESTION, "max_tokens": 1}
        )
    assert accepted.status_code == 200, accepted.text


def test_logprobs_come_back_when_the_upstream_gives_them(oai, direct_oai):
    ask = {"messages": QUESTION, "logprobs": True, "top_logprobs": 2, "max_tokens": 4, "temperature": 0}
    reply = oai.chat.completions.create(model=VIA_OPENAI, **ask)
    direct = direct_oai.chat.completions.create(model=SMOL, **ask)
    got, expected = reply.choices[0].logprobs.content, direct.choices[0].logprobs.content
    assert [(t.token, t.logprob) for t in got] == [(t.token, t.logprob) for t in expected] and len(got) == 4
    assert [[a.token for a in t.top_logprobs] for t in got] == [[a.token for a in t.top_logprobs] for t in expected]


WEATHER = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}}, "required": ["city"]}


def test_tool_calls_cross_formats_through_a_real_model(oai, ant):
    """The Anthropic SDK's tools reach the OpenAI-format upstream (an Outrider whose SmolLM2 calls the tool under
    constraint) and its call comes back as a tool_use block; the OpenAI SDK's reach the Anthropic-format one and
    come back as tool_calls. Streamed and whole agree; the tool result then gets a text answer."""
    tools = [{"name": "get_weather", "description": "The weather in a city.", "input_schema": WEATHER}]
    forced = {"type": "tool", "name": "get_weather"}
    tool_greedy = {"max_tokens": 24, "extra_body": {"temperature": 0}}  # room for the whole call
    message = ant.messages.create(model=VIA_OPENAI, messages=QUESTION, tools=tools, tool_choice=forced, **tool_greedy)
    (block,) = message.content
    assert message.stop_reason == "tool_use" and block.type == "tool_use" and block.name == "get_weather"
    assert set(block.input) == {"city"} and isinstance(block.input["city"], str)
    with ant.messages.stream(model=VIA_OPENAI, messages=QUESTION, tools=tools, tool_choice=forced, **tool_greedy) as s:
        assert s.get_final_message().content[0].input == block.input
    chat_tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
    named = {"type": "function", "function": {"name": "get_weather"}}
    reply = oai.chat.completions.create(
        model=VIA_ANTHROPIC, messages=QUESTION, tools=chat_tools, tool_choice=named, max_tokens=24, temperature=0
    )
    (call,) = reply.choices[0].message.tool_calls
    assert reply.choices[0].finish_reason == "tool_calls" and set(json.loads(call.function.arguments)) == {"city"}
    chunks = list(
        oai.chat.completions.create(
            model=VIA_ANTHROPIC,
            messages=QUESTION,
            tools=chat_tools,
            tool_choice=named,
            max_tokens=24,
            temperature=0,
            stream=True,
        )
    )
    pieces = [p for c in chunks if c.choices for p in c.choices[0].delta.tool_calls or []]
    assert "".join(p.function.arguments or "" for p in pieces) == call.function.arguments
    history = [
        *QUESTION,
        reply.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "21 C"},
    ]
    answer = oai.chat.completions.create(
        model=VIA_ANTHROPIC, messages=history, tools=chat_tools, tool_choice="none", max_tokens=8, temperature=0
    )
    assert answer.choices[0].message.content and answer.choices[0].message.tool_calls is None
