"""Tool calls from the real SmolLM2-135M through ``HFDecoder``: forced calls are always valid JSON for the tool's
schema, ``auto`` answers text or a valid call, ``none`` text; streamed pieces add up to the whole call."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import jsonschema
import pytest

from outrider.backends.decoder_engine import encode_chat
from outrider.backends.decoder_hf import SMOLLM2_ID, HFDecoder, ensure_smollm2_base
from outrider.backends.decoder_tools import ToolCallStream, tool_constraint, tool_conversation
from outrider.core.errors import InvalidTools
from outrider.core.messages import ChatMessage, GenerationParams, ToolCall, ToolChoice, ToolDefinition

WEATHER = ToolDefinition(
    "get_weather",
    "The current weather in a city.",
    {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 12}, "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
)
TIME = ToolDefinition(
    "get_time",
    "The time in a timezone.",
    {"type": "object", "properties": {"zone": {"type": "string", "maxLength": 8}}, "required": ["zone"]},
)
CITY = ToolDefinition(
    "city",
    "",
    {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10}}, "required": ["name"]},
)
QUESTION = [ChatMessage("user", "What is the weather in Paris?")]


@pytest.fixture(scope="module")
def decoder(base_models_dir: Path):
    path = ensure_smollm2_base(base_models_dir / SMOLLM2_ID.replace("/", "--"))
    model = HFDecoder.load(str(path), max_batch=100, max_wait_s=0.05)
    yield model
    model.close()


def params(choice: ToolChoice, **extra) -> GenerationParams:
    return GenerationParams(max_tokens=32, tools=(WEATHER, TIME), tool_choice=choice, **extra)


async def run_all(decoder: HFDecoder, messages, p: GenerationParams, n: int):
    """``n`` generations submitted together (one or two engine batches); their pieces and results."""

    async def one():
        stream = decoder.start(messages, p)
        chunks = [c async for c in stream]
        return chunks, stream.result

    return await asyncio.gather(*(one() for _ in range(n)))


def test_a_forced_call_is_valid_json_for_its_schema_every_time(decoder):
    """100 sampled calls (temperature 1, so they differ), each named and valid for the named tool's schema. The
    validity comes from the constraint, not the prompt: a short prompt keeps the 100 rows cheap on a CPU."""
    p = GenerationParams(max_tokens=24, temperature=1.0, tools=(CITY, TIME), tool_choice=ToolChoice("tool", "city"))
    new_constraint, decision = tool_constraint(decoder.json_constraints().for_schema, p)
    ids = encode_chat(decoder.tokenizer, [ChatMessage("user", "Name a city.")])

    async def run():
        async def one():
            stream = ToolCallStream(decoder.engine.submit(ids, p, new_constraint), decision)
            return [c async for c in stream], stream.result

        return await asyncio.gather(*(one() for _ in range(100)))

    outcomes = asyncio.run(run())
    for chunks, result in outcomes:
        assert result.finish_reason == "tool_calls" and result.text == "" and len(result.tool_calls) == 1
        call = result.tool_calls[0]
        assert call.name == "city" and call.id.startswith("call_")
        jsonschema.validate(json.loads(call.arguments), CITY.parameters)
        # streamed: id and name first, then argument pieces that add up to the whole arguments
        pieces = [p for c in chunks for p in c.tool_calls]
        assert (pieces[0].id, pieces[0].name) == (call.id, call.name)
        assert "".join(p.arguments for p in pieces) == call.arguments and len(pieces) > 2
        assert all(c.text == "" for c in chunks)


def test_required_calls_one_of_the_tools(decoder):
    outcomes = asyncio.run(run_all(decoder, QUESTION, params(ToolChoice("required"), temperature=1.0, seed=3), 4))
    schemas = {WEATHER.name: WEATHER.parameters, TIME.name: TIME.parameters}
    for _, result in outcomes:
        (call,) = result.tool_calls
        jsonschema.validate(json.loads(call.arguments), schemas[call.name])


def test_auto_answers_text_or_a_valid_call_and_none_answers_text(decoder):
    outcomes = asyncio.run(run_all(decoder, QUESTION, params(ToolChoice("auto"), temperature=1.0, seed=5), 6))
    kinds = set()
    for chunks, result in outcomes:
        if result.tool_calls:
            kinds.add("call")
            jsonschema.validate(json.loads(result.tool_calls[0].arguments), WEATHER.parameters)
        else:
            kinds.add("text")
            assert result.text and "".join(c.text for c in chunks) == result.text
    assert kinds  # either is allowed; each is well-formed
    ((_, text),) = asyncio.run(run_all(decoder, QUESTION, params(ToolChoice("none"), temperature=0), 1))
    assert text.tool_calls == () and text.text and text.finish_reason in ("stop", "length")


def test_a_tool_result_turn_gets_a_text_answer(decoder):
    call = ToolCall("call_1", "get_weather", '{"city": "Paris", "unit": "celsius"}')
    history = [
        *QUESTION,
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", '{"temperature": 21}', tool_call_id="call_1"),
    ]
    ((_, result),) = asyncio.run(run_all(decoder, history, params(ToolChoice("none"), temperature=0), 1))
    assert result.text and result.tool_calls == ()


def test_the_prompt_offers_the_tools_and_writes_past_calls_as_json(decoder):
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    history = [
        ChatMessage("system", "Be brief."),
        *QUESTION,
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", "21 C", tool_call_id="call_1"),
    ]
    chat, tools = tool_conversation(decoder.tokenizer, history, params(ToolChoice("auto")))
    assert tools is None  # SmolLM2's template takes no tools: they go in the system prompt
    assert chat[0]["role"] == "system" and chat[0]["content"].startswith("Be brief.")
    assert '"get_weather"' not in chat[0]["content"] and "- get_weather: The current weather" in chat[0]["content"]
    assert chat[2] == {"role": "assistant", "content": '{"name": "get_weather", "arguments": {"city": "Paris"}}'}
    assert chat[3] == {"role": "user", "content": "Result of get_weather: 21 C"}
    unoffered, _ = tool_conversation(decoder.tokenizer, QUESTION, params(ToolChoice("none")))
    assert unoffered == [{"role": "user", "content": QUESTION[0].content}]


def test_tools_with_a_json_response_format_are_refused(decoder):
    with pytest.raises(InvalidTools, match="either tools or a JSON response_format"):
        decoder.start(QUESTION, params(ToolChoice("required"), json_mode=True))
