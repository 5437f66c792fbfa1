"""Tool-calling behaviours of the scripted upstream, in both wire formats, streamed and whole.

    tools           a request whose last turn is not a tool result gets one call, get_weather {"city": "Paris"};
                    one whose last turn is a tool result gets the text FINAL_TEXT
    tools-parallel  the same with two calls: get_weather, then get_time {"zone": "CET"}
    tools-badjson   the call's arguments are BAD_ARGUMENTS, which are not valid JSON (OpenAI format only:
                    Anthropic's ``input`` is always an object)

Arguments stream in three pieces per call (OpenAI ``delta.tool_calls[i].function.arguments``, Anthropic
``input_json_delta``); usage is prompt 11, completion 3.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

TOOL_MODELS = ("tools", "tools-parallel", "tools-badjson")
CALLS = [("call_w1", "get_weather", '{"city": "Paris"}'), ("call_t2", "get_time", '{"zone": "CET"}')]
BAD_ARGUMENTS = '{"city": "Par'
FINAL_TEXT = ["It is", " 21 C", " in Paris."]


def scripted_calls(model: str) -> list[tuple[str, str, str]]:
    if model == "tools-parallel":
        return CALLS
    if model == "tools-badjson":
        return [(CALLS[0][0], CALLS[0][1], BAD_ARGUMENTS)]
    return CALLS[:1]


def _answers_with_text(body: dict[str, Any], anthropic: bool) -> bool:
    last = (body.get("messages") or [{}])[-1]
    if anthropic:
        content = last.get("content")
        return isinstance(content, list) and any(b.get("type") == "tool_result" for b in content)
    return last.get("role") == "tool"


def _pieces(arguments: str) -> list[str]:
    third = max(len(arguments) // 3, 1)
    return [arguments[:third], arguments[third : 2 * third], arguments[2 * third :]]


def _sse(payload: dict[str, Any], event: str | None = None) -> str:
    return (f"event: {event}\n" if event else "") + "data: " + json.dumps(payload) + "\n\n"


async def serve_tools(request: web.Request, model: str, body: dict[str, Any], anthropic: bool) -> web.StreamResponse:
    text = _answers_with_text(body, anthropic)
    calls = [] if text else scripted_calls(model)
    if not body.get("stream"):
        whole = _anthropic_whole(model, calls) if anthropic else _openai_whole(model, calls)
        return web.json_response(whole)
    events = _anthropic_events(model, calls) if anthropic else _openai_events(model, calls)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for event in events:
        await response.write(event.encode())
    return response


def _openai_whole(model: str, calls: list[tuple[str, str, str]]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None if calls else "".join(FINAL_TEXT)}
    if calls:
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": name, "arguments": arguments}}
            for i, name, arguments in calls
        ]
    choice = {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
    usage = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
    return {"id": "x", "object": "chat.completion", "model": model, "choices": [choice], "usage": usage}


def _openai_events(model: str, calls: list[tuple[str, str, str]]) -> list[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return _sse({"id": "x", "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    events = [chunk({"role": "assistant", "content": None if calls else ""})]
    for index, (call_id, name, arguments) in enumerate(calls):
        start = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        events.append(chunk({"tool_calls": [start]}))
        events += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}) for piece in _pieces(arguments)
        ]
    events += [chunk({"content": piece}) for piece in ([] if calls else FINAL_TEXT)]
    events.append(chunk({}, "tool_calls" if calls else "stop"))
    usage = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
    events.append(_sse({"id": "x", "model": model, "choices": [], "usage": usage}))
    return [*events, "data: [DONE]\n\n"]


def _anthropic_whole(model: str, calls: list[tuple[str, str, str]]) -> dict[str, Any]:
    content = [
        {"type": "tool_use", "id": call_id, "name": name, "input": json.loads(arguments)}
        for call_id, name, arguments in calls
    ] or [{"type": "text", "text": "".join(FINAL_TEXT)}]
    return {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "content": content,
        "model": model,
        "stop_reason": "tool_use" if calls else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 11, "output_tokens": 3},
    }


def _anthropic_events(model: str, calls: list[tuple[str, str, str]]) -> list[str]:
    def event(kind: str, **fields: Any) -> str:
        return _sse({"type": kind, **fields}, kind)

    shell = {"id": "m", "type": "message", "role": "assistant", "content": [], "model": model}
    events = [event("message_start", message={**shell, "usage": {"input_tokens": 11, "output_tokens": 1}})]
    if not calls:
        events.append(event("content_block_start", index=0, content_block={"type": "text", "text": ""}))
        events += [
            event("content_block_delta", index=0, delta={"type": "text_delta", "text": piece}) for piece in FINAL_TEXT
        ]
        events.append(event("content_block_stop", index=0))
    for index, (call_id, name, arguments) in enumerate(calls):
        block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
        events.append(event("content_block_start", index=index, content_block=block))
        events += [
            event("content_block_delta", index=index, delta={"type": "input_json_delta", "partial_json": piece})
            for piece in ["", *_pieces(arguments)]
        ]
        events.append(event("content_block_stop", index=index))
    stop = "tool_use" if calls else "end_turn"
    return [
        *events,
        event("message_delta", delta={"stop_reason": stop, "stop_sequence": None}, usage={"output_tokens": 3}),
        event("message_stop"),
    ]
