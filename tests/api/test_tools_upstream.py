"""Tool calling through every surface to upstreams of both formats: the scripted upstream's ``tools`` models call
get_weather (and get_time), then answer the tool result in text. Through the official SDKs, streamed and whole:
a two-turn conversation on every surface x upstream-format pair, parallel calls, streamed arguments that add up
to the whole answer, invalid JSON arguments passed through as sent, and 400s for bad tools."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import openai
import pytest

from tests.conftest import RunningServer
from tests.scripted_tools import BAD_ARGUMENTS, CALLS, FINAL_TEXT
from tests.scripted_upstream import start_gateway_for

UPSTREAMS = {"oa": "openai", "an": "anthropic"}
PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TIME_PARAMETERS = {"type": "object", "properties": {"zone": {"type": "string"}}}
CHAT_TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": PARAMETERS}},
    {"type": "function", "function": {"name": "get_time", "description": "Time", "parameters": TIME_PARAMETERS}},
]
RESPONSES_TOOLS = [{"type": "function", **tool["function"]} for tool in CHAT_TOOLS]
ANTHROPIC_TOOLS = [
    {
        "name": t["function"]["name"],
        "description": t["function"]["description"],
        "input_schema": t["function"]["parameters"],
    }
    for t in CHAT_TOOLS
]
QUESTION = "What is the weather in Paris?"
ANSWER = "".join(FINAL_TEXT)
RESULT = "21 C"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, base_models_dir, scripted) -> Iterator[RunningServer]:
    def models(*names: str) -> list[dict]:
        return [{"model": name, "capabilities": ["chat", "tools"], "price": [1, 2]} for name in names]

    providers = [
        {
            "name": "oa",
            "type": "openai",
            "base_url": f"{scripted.url}/v1",
            "models": [*models("tools", "tools-parallel", "tools-badjson"), {"model": "scripted"}],
        },
        {"name": "an", "type": "anthropic", "base_url": scripted.url, "models": models("tools", "tools-parallel")},
    ]
    running = start_gateway_for(tmp_path_factory.mktemp("tools-gateway"), base_models_dir, providers)
    yield running
    running.stop()


def sent(scripted) -> dict:
    return scripted.last()["body"]


def check_history_reached_upstream(scripted, provider: str, call_id: str) -> None:
    """The second turn's call and result, in the upstream's own format."""
    messages = sent(scripted)["messages"]
    if UPSTREAMS[provider] == "openai":
        assert messages[-1] == {"role": "tool", "tool_call_id": call_id, "content": RESULT}
        (call,) = messages[-2]["tool_calls"]
        assert call["id"] == call_id and call["function"]["name"] == "get_weather"
        assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    else:
        assert messages[-1] == {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call_id, "content": RESULT}],
        }
        tool_use = messages[-2]["content"][-1]
        assert tool_use == {"type": "tool_use", "id": call_id, "name": "get_weather", "input": {"city": "Paris"}}


def streamed_chat_calls(chunks) -> list[dict]:
    """Tool calls reassembled from chat chunks: id and name from the first piece, arguments concatenated."""
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for piece in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            call = calls.setdefault(piece.index, {"id": piece.id, "name": piece.function.name, "arguments": ""})
            assert piece.id is None or piece.id == call["id"]
            call["arguments"] += piece.function.arguments or ""
    return [calls[i] for i in sorted(calls)]


@pytest.mark.parametrize("provider", sorted(UPSTREAMS))
@pytest.mark.parametrize("stream", [False, True])
def test_chat_two_turns(oai, scripted, provider, stream):
    model = f"{provider}/tools"
    question = [{"role": "user", "content": QUESTION}]
    first = oai.chat.completions.create(model=model, messages=question, tools=CHAT_TOOLS)
    (call,) = first.choices[0].message.tool_calls
    assert first.choices[0].finish_reason == "tool_calls" and first.choices[0].message.content is None
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})
    assert sent(scripted)["tools"] == (CHAT_TOOLS if UPSTREAMS[provider] == "openai" else ANTHROPIC_TOOLS)
    if stream:
        chunks = list(oai.chat.completions.create(model=model, messages=question, tools=CHAT_TOOLS, stream=True))
        assert streamed_chat_calls(chunks) == [
            {"id": call.id, "name": "get_weather", "arguments": call.function.arguments}
        ]
        assert chunks[-1].choices[0].finish_reason == "tool_calls"
    history = [
        *question,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": RESULT},
    ]
    if stream:
        chunks = list(oai.chat.completions.create(model=model, messages=history, tools=CHAT_TOOLS, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == ANSWER and chunks[-1].choices[0].finish_reason == "stop"
    else:
        second = oai.chat.completions.create(model=model, messages=history, tools=CHAT_TOOLS)
        assert second.choices[0].message.content == ANSWER and second.choices[0].finish_reason == "stop"
    check_history_reached_upstream(scripted, provider, call.id)


@pytest.mark.parametrize("provider", sorted(UPSTREAMS))
@pytest.mark.parametrize("stream", [False, True])
def test_responses_two_turns(oai, scripted, provider, stream):
    model = f"{provider}/tools"
    first = oai.responses.create(model=model, input=QUESTION, tools=RESPONSES_TOOLS)
    (call,) = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"} and first.status == "completed"
    # the response echoes the request's tools and choice, as OpenAI's does
    assert [t.name for t in first.tools] == [t["name"] for t in RESPONSES_TOOLS]
    assert first.tool_choice == "auto" and first.parallel_tool_calls is True
    if stream:
        with oai.responses.stream(model=model, input=QUESTION, tools=RESPONSES_TOOLS) as events:
            deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
            final = events.get_final_response()
        assert [t.name for t in final.tools] == [t["name"] for t in RESPONSES_TOOLS]
        (streamed,) = final.output
        assert "".join(deltas) == streamed.arguments == call.arguments and len(deltas) > 1
        assert (streamed.call_id, streamed.name) == (call.call_id, call.name)
    history = [
        {"role": "user", "content": QUESTION},
        *[item.model_dump(exclude_none=True) for item in first.output],
        {"type": "function_call_output", "call_id": call.call_id, "output": RESULT},
    ]
    if stream:
        with oai.responses.stream(model=model, input=history, tools=RESPONSES_TOOLS) as events:
            final = events.get_final_response()
        assert final.output_text == ANSWER
    else:
        assert oai.responses.create(model=model, input=history, tools=RESPONSES_TOOLS).output_text == ANSWER
    check_history_reached_upstream(scripted, provider, call.call_id)


@pytest.mark.parametrize("provider", sorted(UPSTREAMS))
@pytest.mark.parametrize("stream", [False, True])
def test_messages_two_turns(ant, scripted, provider, stream):
    model = f"{provider}/tools"
    question = [{"role": "user", "content": QUESTION}]
    first = ant.messages.create(model=model, max_tokens=64, messages=question, tools=ANTHROPIC_TOOLS)
    (block,) = first.content
    assert first.stop_reason == "tool_use" and block.type == "tool_use"
    assert (block.name, block.input) == ("get_weather", {"city": "Paris"})
    if stream:
        with ant.messages.stream(model=model, max_tokens=64, messages=question, tools=ANTHROPIC_TOOLS) as events:
            kinds = [(e.type, getattr(getattr(e, "delta", None), "type", None)) for e in events]
            final = events.get_final_message()
        assert ("content_block_delta", "input_json_delta") in kinds and final.stop_reason == "tool_use"
        assert [b.model_dump() for b in final.content] == [b.model_dump() for b in first.content]
    history = [
        *question,
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": RESULT}]},
    ]
    if stream:
        with ant.messages.stream(model=model, max_tokens=64, messages=history, tools=ANTHROPIC_TOOLS) as events:
            final = events.get_final_message()
        assert final.content[0].text == ANSWER and final.stop_reason == "end_turn"
    else:
        second = ant.messages.create(model=model, max_tokens=64, messages=history, tools=ANTHROPIC_TOOLS)
        assert second.content[0].text == ANSWER and second.stop_reason == "end_turn"
    check_history_reached_upstream(scripted, provider, block.id)


@pytest.mark.parametrize("provider", sorted(UPSTREAMS))
def test_parallel_calls_on_every_surface(oai, ant, provider):
    model = f"{provider}/tools-parallel"
    expected = [(name, json.loads(arguments)) for _, name, arguments in CALLS]
    question = [{"role": "user", "content": QUESTION}]
    whole = oai.chat.completions.create(model=model, messages=question, tools=CHAT_TOOLS)
    calls = whole.choices[0].message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == expected
    chunks = list(oai.chat.completions.create(model=model, messages=question, tools=CHAT_TOOLS, stream=True))
    assert [(c["name"], c["arguments"]) for c in streamed_chat_calls(chunks)] == [
        (c.function.name, c.function.arguments) for c in calls
    ]
    with oai.responses.stream(model=model, input=QUESTION, tools=RESPONSES_TOOLS) as events:
        final = events.get_final_response()
    assert [(o.name, json.loads(o.arguments)) for o in final.output] == expected
    message = ant.messages.create(model=model, max_tokens=64, messages=question, tools=ANTHROPIC_TOOLS)
    assert [(b.name, b.input) for b in message.content] == expected
    with ant.messages.stream(model=model, max_tokens=64, messages=question, tools=ANTHROPIC_TOOLS) as events:
        streamed = events.get_final_message()
    assert [(b.name, b.input) for b in streamed.content] == expected


def test_tool_choice_and_parallel_setting_reach_each_upstream(oai, ant, scripted):
    question = [{"role": "user", "content": QUESTION}]
    named = {"type": "function", "function": {"name": "get_time"}}
    oai.chat.completions.create(
        model="an/tools", messages=question, tools=CHAT_TOOLS, tool_choice=named, parallel_tool_calls=False
    )
    assert sent(scripted)["tool_choice"] == {"type": "tool", "name": "get_time", "disable_parallel_tool_use": True}
    assert sent(scripted)["tools"][1] == ANTHROPIC_TOOLS[1]
    oai.chat.completions.create(model="an/tools", messages=question, tools=CHAT_TOOLS, tool_choice="required")
    assert sent(scripted)["tool_choice"] == {"type": "any"}
    ant.messages.create(
        model="oa/tools",
        max_tokens=64,
        messages=question,
        tools=ANTHROPIC_TOOLS,
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
    )
    assert sent(scripted)["tool_choice"] == "required" and sent(scripted)["parallel_tool_calls"] is False
    assert sent(scripted)["tools"] == CHAT_TOOLS
    ant.messages.create(
        model="oa/tools", max_tokens=64, messages=question, tools=ANTHROPIC_TOOLS, tool_choice={"type": "none"}
    )
    assert sent(scripted)["tool_choice"] == "none" and "parallel_tool_calls" not in sent(scripted)


def test_invalid_json_arguments_are_passed_through(oai, ant):
    """An OpenAI-format upstream's arguments that do not parse reach every surface as the upstream sent them (the
    Anthropic surface's ``input`` is then that raw string, streamed as one JSON string)."""
    model, question = "oa/tools-badjson", [{"role": "user", "content": QUESTION}]
    whole = oai.chat.completions.create(model=model, messages=question, tools=CHAT_TOOLS)
    assert whole.choices[0].message.tool_calls[0].function.arguments == BAD_ARGUMENTS
    chunks = list(oai.chat.completions.create(model=model, messages=question, tools=CHAT_TOOLS, stream=True))
    assert streamed_chat_calls(chunks)[0]["arguments"] == BAD_ARGUMENTS
    assert oai.responses.create(model=model, input=QUESTION, tools=RESPONSES_TOOLS).output[0].arguments == BAD_ARGUMENTS
    message = ant.messages.create(model=model, max_tokens=64, messages=question, tools=ANTHROPIC_TOOLS)
    assert message.content[0].input == BAD_ARGUMENTS and message.stop_reason == "tool_use"
    with ant.messages.stream(model=model, max_tokens=64, messages=question, tools=ANTHROPIC_TOOLS) as events:
        assert events.get_final_message().content[0].input == BAD_ARGUMENTS


BAD_CHAT_TOOLS = {
    "unknown tool_choice": {"tools": CHAT_TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}},
    "nameless tool": {"tools": [{"type": "function", "function": {"parameters": PARAMETERS}}]},
    "bad schema": {"tools": [{"type": "function", "function": {"name": "x", "parameters": {"type": "objekt"}}}]},
    "bad name": {"tools": [{"type": "function", "function": {"name": "get weather"}}]},
    "required without tools": {"tool_choice": "required"},
    "non-function tool": {"tools": [{"type": "web_search"}]},
}


@pytest.mark.parametrize("case", sorted(BAD_CHAT_TOOLS))
def test_bad_tools_are_400_in_the_openai_envelope(oai, case):
    question = [{"role": "user", "content": QUESTION}]
    with pytest.raises(openai.BadRequestError) as raised:
        oai.chat.completions.create(model="oa/tools", messages=question, **BAD_CHAT_TOOLS[case])
    error = raised.value.body
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_tools" and error["message"]


def test_bad_tools_are_400_on_responses_and_messages(oai, ant):
    with pytest.raises(openai.BadRequestError, match="'nope', which is not among the tools"):
        oai.responses.create(
            model="oa/tools", input=QUESTION, tools=RESPONSES_TOOLS, tool_choice={"type": "function", "name": "nope"}
        )
    with pytest.raises(openai.BadRequestError, match=r"tools\[0\]\.name"):
        oai.responses.create(model="oa/tools", input=QUESTION, tools=[{"type": "function"}])
    question = [{"role": "user", "content": QUESTION}]
    with pytest.raises(anthropic.BadRequestError, match="'nope', which is not among the tools") as raised:
        ant.messages.create(
            model="an/tools",
            max_tokens=8,
            messages=question,
            tools=ANTHROPIC_TOOLS,
            tool_choice={"type": "tool", "name": "nope"},
        )
    assert raised.value.body["type"] == "error" and raised.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError, match="input_schema"):
        ant.messages.create(model="an/tools", max_tokens=8, messages=question, tools=[{"name": "x"}])
    with pytest.raises(anthropic.BadRequestError, match="follows no assistant tool call"):
        orphan = [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "1"}]}]
        ant.messages.create(model="an/tools", max_tokens=8, messages=orphan, tools=ANTHROPIC_TOOLS)


def test_a_model_without_the_tools_capability_refuses_tools(oai, ant):
    with pytest.raises(openai.BadRequestError, match="does not declare the 'tools' capability"):
        oai.chat.completions.create(
            model="oa/scripted", messages=[{"role": "user", "content": QUESTION}], tools=CHAT_TOOLS
        )
    with pytest.raises(anthropic.BadRequestError, match="'tools' capability"):
        ant.messages.create(
            model="oa/scripted", max_tokens=8, messages=[{"role": "user", "content": "Hi"}], tools=ANTHROPIC_TOOLS
        )
