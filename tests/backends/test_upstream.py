"""Upstream backends against real HTTP servers on loopback: the providers file, wire translation in both
formats, error mapping, cancellation, health probes and the circuit breaker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import ValidationError

from outrider.backends.upstream import UpstreamProviders
from outrider.backends.upstream_config import ProvidersConfig, ProvidersFileError, load_providers
from outrider.backends.upstream_health import UpstreamMonitor
from outrider.config import build_settings
from outrider.core.errors import InvalidRequest, ModelNotFound, PayloadTooLarge, RateLimited, UpstreamError
from outrider.core.messages import ChatMessage, GenerationParams
from tests.conftest import free_port
from tests.scripted_upstream import SCRIPTED_TEXT, ScriptedUpstream
from tests.waiting import wait_until_async

KEY = "sk-scripted-0123"
CHAT = [ChatMessage("system", "Be brief."), ChatMessage("user", "Hi"), ChatMessage("user", "there")]
PARAMS = GenerationParams(max_tokens=8, temperature=0.0)


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedUpstream]:
    server = ScriptedUpstream().start()
    yield server
    server.stop()


def providers_config(scripted_url: str, **provider: object) -> ProvidersConfig:
    models = [{"model": m, "capabilities": ["chat", "json", "completions"], "price": [1, 2]} for m in _MODELS]
    common = {"api_key_env": "SCRIPTED_KEY", "timeout_s": 0.5, "models": models, **provider}
    return ProvidersConfig.model_validate(
        {
            "providers": [
                {"name": "oai", "type": "openai", "base_url": f"{scripted_url}/v1", **common},
                {"name": "ant", "type": "anthropic", "base_url": scripted_url, **common},
                {
                    "name": "gone",
                    "type": "openai",
                    "base_url": f"http://127.0.0.1:{free_port()}/v1",
                    "models": [{"model": "scripted"}],
                },
            ]
        }
    )


_MODELS = ["scripted", "no-usage", "hang", "hang-midstream", "error-midstream", "truncated"] + [
    f"status-{s}" for s in (400, 401, 403, 404, 413, 429, 500, 503)
]


@pytest.fixture
async def upstreams(scripted, tmp_path) -> AsyncIterator[UpstreamProviders]:
    settings = build_settings(data_dir=tmp_path, upstream_breaker_failures=2, upstream_health_ttl_s=60)
    providers = UpstreamProviders(providers_config(scripted.url), settings, environ={"SCRIPTED_KEY": KEY})
    yield providers
    await providers.aclose()


# -- the providers file ---------------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_and_json_files_give_the_same_config_and_ids_follow_the_naming_rule(tmp_path):
    yaml_file = write(
        tmp_path,
        "providers.yaml",
        """
providers:
  - name: myvllm
    type: openai
    base_url: http://10.0.0.5:8001/v1/
    api_key_env: MYVLLM_KEY
    models:
      - model: Qwen/Qwen2.5-7B-Instruct
        price: [0.2, 0.6]
        context_length: 32768
        capabilities: [chat, json]
      - {model: llama3, id: fast-llama}
""",
    )
    config = load_providers(yaml_file)
    json_file = write(tmp_path, "providers.json", json.dumps(config.model_dump(mode="json")))
    assert load_providers(json_file) == config
    provider = config.providers[0]
    assert provider.base_url == "http://10.0.0.5:8001/v1"  # trailing slash dropped
    assert [provider.exposed_id(m) for m in provider.models] == ["myvllm/Qwen/Qwen2.5-7B-Instruct", "fast-llama"]
    assert provider.models[0].price == (0.2, 0.6) and provider.models[1].capabilities == ("chat",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("providers: [{name: a, type: grpc, base_url: http://x, models: [{model: m}]}]", "providers[0] (a).type"),
        ("providers: [{name: a, type: openai, base_url: x.com, models: [{model: m}]}]", "base_url must start with"),
        ("providers: [{name: a, type: openai, base_url: http://x, models: []}]", "providers[0] (a).models"),
        (
            "providers: [{name: a, type: openai, base_url: http://x, models: [{model: m, price: [1, -2]}]}]",
            "providers[0] (a).models[0].price: Value error, prices must be >= 0",
        ),
        ("providers: [{name: a, type: openai, base_url: http://x, modles: [{model: m}]}]", "modles: Extra inputs"),
        (
            "providers: [{name: a, type: openai, base_url: http://x, models: [{model: m, id: z}]},"
            " {name: b, type: anthropic, base_url: http://y, models: [{model: n, id: z}]}]",
            "model ids must be unique across providers; repeated: ['z']",
        ),
        ("providers: [{name: a b, type: openai, base_url: http://x, models: [{model: m}]}]", "a provider name uses"),
        ("providers: [", "not valid YAML"),
    ],
)
def test_invalid_files_are_refused_with_the_place_and_the_reason(tmp_path, text, expected):
    with pytest.raises(ProvidersFileError) as caught:
        load_providers(write(tmp_path, "p.yaml", text))
    assert expected in str(caught.value)


def test_settings_refuse_a_missing_or_invalid_providers_file_at_start(tmp_path):
    with pytest.raises(ValidationError, match="cannot read it"):
        build_settings(data_dir=tmp_path, providers_file=tmp_path / "absent.yaml")
    bad = write(tmp_path, "bad.json", '{"providers": [{"name": "a"}]}')
    with pytest.raises(ValidationError, match=r"providers\[0\] \(a\)\.type: Field required"):
        build_settings(data_dir=tmp_path, providers_file=bad)


def test_an_upstream_id_may_not_shadow_a_local_model(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from outrider.backends.registry import ModelRegistry

    path = write(
        tmp_path,
        "p.yaml",
        "providers: [{name: a, type: openai, base_url: http://x, "
        "models: [{model: m, id: HuggingFaceTB/SmolLM2-135M-Instruct}]}]",
    )
    settings = build_settings(data_dir=tmp_path, providers_file=path)
    registry = ModelRegistry(settings, ThreadPoolExecutor(1))
    registry.register_plugins()
    with pytest.raises(ValueError, match="already used by local models"):
        UpstreamProviders.from_settings(settings).register_models(registry)


# -- translation, streaming and usage ---------------------------------------------------------------------


async def test_openai_upstream_streams_chunks_and_reports_usage(scripted, upstreams):
    stream = upstreams.models["oai/scripted"].start(CHAT, PARAMS)
    await stream.opened()
    texts = [chunk.text async for chunk in stream]
    assert texts == SCRIPTED_TEXT
    result = stream.result
    assert (result.text, result.finish_reason) == ("".join(SCRIPTED_TEXT), "length")
    assert (result.prompt_tokens, result.completion_tokens, result.extra) == (11, 3, {})
    sent = scripted.last()
    assert sent["path"] == "/v1/chat/completions" and sent["headers"]["Authorization"] == f"Bearer {KEY}"
    body = sent["body"]
    assert body["model"] == "scripted" and body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": m.role, "content": m.content} for m in CHAT]
    assert (body["max_tokens"], body["temperature"]) == (8, 0.0) and "response_format" not in body


async def test_openai_raw_prompts_and_json_modes(scripted, upstreams):
    model = upstreams.models["oai/scripted"]
    completion = await model.start("Once upon", PARAMS).collect()
    assert completion.text == "".join(SCRIPTED_TEXT)
    assert scripted.last()["path"] == "/v1/completions" and scripted.last()["body"]["prompt"] == "Once upon"
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    await model.start(CHAT, GenerationParams(max_tokens=8, json_mode=True, json_schema=schema)).collect()
    assert scripted.last()["body"]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }
    await model.start(CHAT, GenerationParams(max_tokens=8, json_mode=True)).collect()
    assert scripted.last()["body"]["response_format"] == {"type": "json_object"}


async def test_anthropic_upstream_translates_messages_and_reads_usage_before_the_first_token(scripted, upstreams):
    stream = upstreams.models["ant/scripted"].start(CHAT, GenerationParams(max_tokens=8, temperature=1.7, stop=("x",)))
    await stream.opened()
    assert stream.prompt_tokens == 11  # from message_start, before any token
    result = await stream.collect()
    assert (result.text, result.finish_reason, result.completion_tokens) == ("".join(SCRIPTED_TEXT), "length", 3)
    sent = scripted.last()
    assert sent["path"] == "/v1/messages"
    assert sent["headers"]["x-api-key"] == KEY and sent["headers"]["anthropic-version"] == "2023-06-01"
    body = sent["body"]
    assert body["system"] == "Be brief." and body["messages"] == [{"role": "user", "content": "Hi\n\nthere"}]
    assert body["temperature"] == 1.0 and "top_p" not in body and body["stop_sequences"] == ["x"]


async def test_anthropic_json_schema_uses_structured_outputs(scripted, upstreams):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    params = GenerationParams(json_mode=True, json_schema=schema)
    result = await upstreams.models["ant/scripted"].start(CHAT, params).collect()
    assert json.loads(result.text) == {"answer": "upstream"}
    body = scripted.last()["body"]
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}} and "tools" not in body


async def test_anthropic_plain_json_mode_forces_a_tool_whose_input_is_the_answer(scripted, upstreams):
    result = await upstreams.models["ant/scripted"].start(CHAT, GenerationParams(json_mode=True)).collect()
    assert json.loads(result.text) == {"answer": "upstream"} and result.finish_reason == "stop"
    body = scripted.last()["body"]
    assert body["tools"][0]["input_schema"] == {"type": "object"} and "output_config" not in body
    assert body["tool_choice"] == {"type": "tool", "name": body["tools"][0]["name"]}


async def test_models_that_refuse_sampling_parameters_get_none(tmp_path, scripted):
    models = [{"model": "scripted", "sampling": False}]
    config = ProvidersConfig.model_validate(
        {
            "providers": [
                {"name": "o", "type": "openai", "base_url": f"{scripted.url}/v1", "models": models},
                {"name": "a", "type": "anthropic", "base_url": scripted.url, "models": models},
            ]
        }
    )
    providers = UpstreamProviders(config, build_settings(data_dir=tmp_path))
    try:
        for model_id in ("o/scripted", "a/scripted"):
            await providers.models[model_id].start(CHAT, GenerationParams(temperature=0.2, top_p=0.5)).collect()
            body = scripted.last()["body"]
            assert "temperature" not in body and "top_p" not in body and body["max_tokens"] == 256
    finally:
        await providers.aclose()


async def test_json_needs_the_declared_capability(tmp_path, scripted):
    config = ProvidersConfig.model_validate(
        {"providers": [{"name": "p", "type": "openai", "base_url": scripted.url, "models": [{"model": "scripted"}]}]}
    )
    providers = UpstreamProviders(config, build_settings(data_dir=tmp_path))
    with pytest.raises(InvalidRequest, match="'json' capability"):
        providers.models["p/scripted"].start(CHAT, GenerationParams(json_mode=True))


async def test_a_stream_without_usage_is_estimated_and_says_so(upstreams):
    result = await upstreams.models["oai/no-usage"].start(CHAT, PARAMS).collect()
    assert result.completion_tokens == 3 and result.prompt_tokens > 0
    assert result.extra == {"usage_estimated": True}


async def test_cancel_closes_the_upstream_stream_and_keeps_what_was_produced(upstreams):
    model = upstreams.models["oai/hang-midstream"]
    stream = model.start(CHAT, PARAMS)
    await stream.opened()
    first = await anext(aiter(stream))
    stream.cancel()
    result = await asyncio.wait_for(stream.wait_result(), 5)
    assert result.finish_reason == "cancelled" and result.text == first.text == SCRIPTED_TEXT[0]
    assert model.monitor.consecutive_failures == 0  # a client going away is not the upstream's fault


# -- whole answers (non-streaming callers) -------------------------------------------------------------------

WHOLE = replace(PARAMS, stream=False)


@pytest.mark.parametrize(
    ("model_id", "prompt", "path"),
    [
        ("oai/scripted", CHAT, "/v1/chat/completions"),
        ("oai/scripted", "Once upon", "/v1/completions"),
        ("ant/scripted", CHAT, "/v1/messages"),
    ],
)
async def test_a_caller_that_wants_the_whole_answer_sends_one_non_streamed_request(
    scripted, upstreams, model_id, prompt, path
):
    stream = upstreams.models[model_id].start(prompt, WHOLE)
    await stream.opened()  # the whole answer is in once the request returns
    chunks = [chunk.text async for chunk in stream]
    assert chunks == ["".join(SCRIPTED_TEXT)]
    result = stream.result
    assert (result.text, result.finish_reason) == ("".join(SCRIPTED_TEXT), "length")
    assert (result.prompt_tokens, result.completion_tokens, result.extra) == (11, 3, {})
    sent = scripted.last()
    assert sent["path"] == path and sent["body"]["stream"] is False and "stream_options" not in sent["body"]


async def test_whole_anthropic_json_answers_come_from_the_forced_tool_or_the_text(scripted, upstreams):
    model = upstreams.models["ant/scripted"]
    forced = await model.start(CHAT, replace(WHOLE, json_mode=True)).collect()
    assert json.loads(forced.text) == {"answer": "upstream"} and forced.finish_reason == "stop"
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    structured = await model.start(CHAT, replace(WHOLE, json_mode=True, json_schema=schema)).collect()
    assert json.loads(structured.text) == {"answer": "upstream"}


async def test_a_whole_answer_without_usage_is_estimated_from_its_length(upstreams):
    result = await upstreams.models["oai/no-usage"].start(CHAT, WHOLE).collect()
    assert result.completion_tokens == -(-len("".join(SCRIPTED_TEXT)) // 4) and result.prompt_tokens > 0
    assert result.extra == {"usage_estimated": True}


@pytest.mark.parametrize("provider", ["oai", "ant"])
@pytest.mark.parametrize(
    ("model", "code"),
    [("error-midstream", "upstream_error"), ("truncated", "upstream_error"), ("hang-midstream", "upstream_timeout")],
)
async def test_a_whole_answer_that_fails_fails_before_any_token(upstreams, provider, model, code):
    model_obj = upstreams.models[f"{provider}/{model}"]
    stream = model_obj.start(CHAT, WHOLE)
    with pytest.raises(UpstreamError) as caught:
        await stream.opened()  # so a routed call can still fall back to the next model
    assert caught.value.code == code and model_obj.monitor.consecutive_failures == 1


async def test_cancelling_a_whole_request_closes_the_upstream_connection(scripted, upstreams):
    before = scripted.disconnects
    stream = upstreams.models["oai/hang-midstream"].start(CHAT, replace(WHOLE, max_tokens=9))
    opening = asyncio.ensure_future(stream.opened())
    await wait_until_async(  # until the upstream has the request
        lambda: scripted.requests and scripted.last()["body"].get("max_tokens") == 9, 1, 0.01, "the request upstream"
    )
    stream.cancel()
    with pytest.raises(asyncio.CancelledError):
        await opening
    result = await asyncio.wait_for(stream.wait_result(), 5)
    assert result.finish_reason == "cancelled" and result.text == ""
    await wait_until_async(lambda: scripted.disconnects > before, 2, 0.02, "the upstream connection to close")
    assert scripted.disconnects == before + 1


# -- errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["oai", "ant"])
@pytest.mark.parametrize(
    ("model", "error", "code", "status"),
    [
        ("status-500", UpstreamError, "upstream_error", 502),
        ("status-503", UpstreamError, "upstream_error", 502),
        ("status-401", UpstreamError, "upstream_auth_error", 502),
        ("status-403", UpstreamError, "upstream_auth_error", 502),
        ("status-404", ModelNotFound, "model_not_found", 404),
        ("status-400", InvalidRequest, "invalid_request", 422),
        ("status-413", PayloadTooLarge, "payload_too_large", 413),
        ("status-429", RateLimited, "upstream_rate_limited", 429),
        ("hang", UpstreamError, "upstream_timeout", 502),
    ],
)
@pytest.mark.parametrize("streamed", [True, False])
async def test_errors_before_the_first_token_map_to_domain_errors(
    upstreams, provider, model, error, code, status, streamed
):
    stream = upstreams.models[f"{provider}/{model}"].start(CHAT, PARAMS if streamed else WHOLE)
    with pytest.raises(error) as caught:
        await stream.opened()
    assert (caught.value.code, caught.value.status_code) == (code, status)
    assert f"'{provider}'" in caught.value.message
    if status == 429:
        assert caught.value.retry_after == 7


async def test_a_refused_connection_is_an_unreachable_upstream(upstreams):
    with pytest.raises(UpstreamError) as caught:
        await upstreams.models["gone/scripted"].start(CHAT, PARAMS).collect()
    assert caught.value.code == "upstream_unreachable" and caught.value.status_code == 502


@pytest.mark.parametrize("provider", ["oai", "ant"])
@pytest.mark.parametrize(
    ("model", "code"),
    [("error-midstream", "upstream_error"), ("truncated", "upstream_error"), ("hang-midstream", "upstream_timeout")],
)
async def test_failures_after_the_first_token_end_the_stream_with_an_upstream_error(upstreams, provider, model, code):
    stream = upstreams.models[f"{provider}/{model}"].start(CHAT, PARAMS)
    await stream.opened()
    received = []
    with pytest.raises(UpstreamError) as caught:
        async for chunk in stream:
            received.append(chunk.text)
    assert received and caught.value.code == code
    with pytest.raises(UpstreamError):
        _ = stream.result


# -- health and the circuit breaker ----------------------------------------------------------------------


async def test_probe_results_are_cached_and_failures_open_the_breaker(scripted, upstreams):
    monitor = upstreams.models["oai/scripted"].monitor
    before = scripted.probes
    assert await monitor.health() == ("ready", None)
    assert await monitor.health() == ("ready", None)
    assert scripted.probes == before + 1  # the second answer came from the cache
    other = upstreams.models["ant/scripted"].monitor
    scripted.models_status = 500
    try:
        status, reason = await other.health()
        assert status == "unavailable" and "answered 500" in reason and other.state == "closed"
        status, reason = await other.health()  # the second consecutive failure opens the circuit (threshold 2)
        assert status == "unavailable" and other.state == "open" and not other.is_available()
        assert "failed 2 times in a row" in reason
        probes = scripted.probes
        assert (await other.health())[0] == "unavailable" and scripted.probes == probes  # open: no probe sent
        with pytest.raises(UpstreamError) as caught:
            upstreams.models["ant/scripted"].start(CHAT, PARAMS)
        assert caught.value.code == "upstream_unavailable"
    finally:
        scripted.models_status = 200


async def test_real_calls_feed_the_breaker(upstreams):
    model = upstreams.models["oai/status-500"]
    for _ in range(2):
        with pytest.raises(UpstreamError):
            await model.start(CHAT, PARAMS).opened()
    assert model.monitor.state == "open" and not model.monitor.is_available()
    # Caller errors (400) and rate limits do not count against the upstream.
    limited = upstreams.models["oai/status-429"]
    for _ in range(3):
        with pytest.raises(RateLimited):
            await limited.start(CHAT, PARAMS).opened()
    assert limited.monitor.consecutive_failures == 0 and limited.monitor.is_available()


def test_the_breaker_half_opens_after_the_cool_down():
    now = [0.0]
    outcomes = iter(["down", "down", None])

    async def probe() -> str | None:
        return next(outcomes)

    monitor = UpstreamMonitor("m", probe, ttl_s=10, failure_threshold=3, cooldown_s=30, clock=lambda: now[0])
    for _ in range(3):
        monitor.report_failure("boom")
    assert monitor.state == "open" and not monitor.is_available()
    now[0] = 29.9
    assert monitor.state == "open"
    now[0] = 30.0
    assert monitor.state == "half_open" and monitor.is_available()
    # Half-open: one more failure opens it again at once, for another full cool-down.
    assert asyncio.run(monitor.health())[0] == "unavailable" and monitor.state == "open"
    now[0] = 59.9
    assert monitor.state == "open"
    now[0] = 60.0
    assert asyncio.run(monitor.health())[0] == "unavailable" and monitor.state == "open"
    now[0] = 90.0
    assert asyncio.run(monitor.health()) == ("ready", None) and monitor.state == "closed"
    monitor.report_failure("once")
    assert monitor.state == "closed" and monitor.is_available()  # one failure is below the threshold


def test_a_missing_key_variable_makes_the_provider_unavailable(tmp_path, scripted):
    providers = UpstreamProviders(providers_config(scripted.url), build_settings(data_dir=tmp_path), environ={})
    monitor = providers.models["oai/scripted"].monitor
    assert not monitor.is_available()
    assert asyncio.run(monitor.health()) == (
        "unavailable",
        "environment variable SCRIPTED_KEY (provider 'oai') is not set",
    )
    with pytest.raises(UpstreamError, match="SCRIPTED_KEY"):
        providers.models["oai/scripted"].start(CHAT, PARAMS)


def test_a_provider_client_serves_each_event_loop_with_a_session_of_its_own(scripted, tmp_path):
    # build_services runs before the server's loop exists, and tests run loops of their own.
    settings = build_settings(data_dir=tmp_path)
    providers = UpstreamProviders(providers_config(scripted.url), settings, environ={"SCRIPTED_KEY": KEY})
    model = providers.models["oai/scripted"]
    client = providers.clients["oai"]

    async def call() -> tuple[str, object]:
        result = await model.start(CHAT, WHOLE).collect()
        return result.text, client.session()

    first_text, first_session = asyncio.run(call())
    second_text, second_session = asyncio.run(call())
    assert first_text == second_text == "".join(SCRIPTED_TEXT)
    assert first_session is not second_session
    asyncio.run(providers.aclose())
