"""Tool calling with the local SmolLM2 on every surface, through the official SDKs, streamed and whole: forced calls
are valid for the tool's schema, streamed pieces add up to the whole call, and a tool result gets a text answer."""

from __future__ import annotations

import json

import anthropic
import jsonschema
import openai
import pytest

from tests.conftest import ADMIN_KEY, SMOL

PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 12}},
    "required": ["city"],
    "additionalProperties": False,
}
FUNCTION = {"name": "get_weather", "description": "The current weather in a city.", "parameters": PARAMETERS}
CHAT_TOOLS = [{"type": "function", "function": FUNCTION}]
NAMED = {"type": "function", "function": {"name": "get_weather"}}
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
GREEDY = {"max_tokens": 32, "temperature": 0}


@pytest.fixture(scope="module")
def oai(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=ADMIN_KEY, max_retries=0)


@pytest.fixture(scope="module")
def ant(server) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key=ADMIN_KEY, max_retries=0)


def test_the_local_decoder_declares_tools(admin):
    assert "tools" in admin.get(f"/models/{SMOL}").json()["capabilities"]


def test_chat_forced_call_streamed_and_whole_then_the_answer(oai):
    whole = oai.chat.completions.create(model=SMOL, messages=QUESTION, tools=CHAT_TOOLS, tool_choice=NAMED, **GREEDY)
    choice = whole.choices[0]
    (call,) = choice.message.tool_calls
    assert choice.finish_reason == "tool_calls" and choice.message.content is None and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), PARAMETERS)
    chunks = list(
        oai.chat.completions.create(
            model=SMOL, messages=QUESTION, tools=CHAT_TOOLS, tool_choice=NAMED, stream=True, **GREEDY
        )
    )
    pieces = [p for c in chunks if c.choices for p in c.choices[0].delta.tool_calls or []]
    assert pieces[0].id and pieces[0].function.name == "get_weather" and len(pieces) > 2
    assert "".join(p.function.arguments or "" for p in pieces) == call.function.arguments
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    history = [
        *QUESTION,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "21 C and sunny"},
    ]
    answer = oai.chat.completions.create(model=SMOL, messages=history, tools=CHAT_TOOLS, tool_choice="none", **GREEDY)
    assert answer.choices[0].message.content and answer.choices[0].message.tool_calls is None


def test_chat_auto_answers_text_or_a_valid_call(oai):
    reply = oai.chat.completions.create(model=SMOL, messages=QUESTION, tools=CHAT_TOOLS, **GREEDY)
    message = reply.choices[0].message
    if message.tool_calls:
        jsonschema.validate(json.loads(message.tool_calls[0].function.arguments), PARAMETERS)
    else:
        assert message.content and reply.choices[0].finish_reason in ("stop", "length")


def test_responses_required_call_streamed_and_whole(oai):
    tools = [{"type": "function", **FUNCTION}]
    whole = oai.responses.create(
        model=SMOL, input=QUESTION[0]["content"], tools=tools, tool_choice="required", max_output_tokens=32
    )
    (call,) = whole.output
    assert call.type == "function_call" and call.name == "get_weather"
    jsonschema.validate(json.loads(call.arguments), PARAMETERS)
    with oai.responses.stream(
        model=SMOL, input=QUESTION[0]["content"], tools=tools, tool_choice="required", max_output_tokens=32
    ) as events:
        deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
        final = events.get_final_response()
    assert "".join(deltas) == final.output[0].arguments
    jsonschema.validate(json.loads(final.output[0].arguments), PARAMETERS)


def test_messages_forced_tool_streamed_and_whole_then_the_answer(ant):
    tools = [{"name": FUNCTION["name"], "description": FUNCTION["description"], "input_schema": PARAMETERS}]
    forced = {"type": "tool", "name": "get_weather"}
    options = {"max_tokens": 32, "extra_body": {"temperature": 0}}
    whole = ant.messages.create(model=SMOL, messages=QUESTION, tools=tools, tool_choice=forced, **options)
    (block,) = whole.content
    assert whole.stop_reason == "tool_use" and block.type == "tool_use" and block.name == "get_weather"
    jsonschema.validate(block.input, PARAMETERS)
    with ant.messages.stream(model=SMOL, messages=QUESTION, tools=tools, tool_choice=forced, **options) as events:
        final = events.get_final_message()
    assert final.content[0].input == block.input and final.stop_reason == "tool_use"
    history = [
        *QUESTION,
        {"role": "assistant", "content": [block.model_dump()]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "21 C"}]},
    ]
    answer = ant.messages.create(model=SMOL, messages=history, tools=tools, tool_choice={"type": "none"}, **options)
    assert answer.content[0].type == "text" and answer.content[0].text and answer.stop_reason != "tool_use"
