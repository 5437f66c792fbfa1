"""OpenAI streaming: chat and completion chunks, Responses API events, ``data: [DONE]``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from outrider.api.errors import responses_stream_error, stream_error
from outrider.api.routed import routed_stream
from outrider.api.sse import sse
from outrider.core.errors import OutriderError
from outrider.core.ids import new_id
from outrider.core.messages import GenerationChunk, GenerationResult, ToolCall
from outrider.services.generation import ActiveGeneration

from .conversion import (
    FINISH,
    chat_logprobs,
    completion_logprobs,
    function_call_item,
    response_object,
    usage_dict,
)

DONE = "data: [DONE]\n\n"


Chunk = Callable[..., str]


def routed(active: ActiveGeneration, events: AsyncIterator[str]) -> AsyncIterator[str]:
    """With ``model: "auto"`` the routing decision is the stream's first event (a plain ``data:`` line)."""
    return routed_stream(active, events, sse)


def _chunker(
    kind: str, chunk_id: str, model: str, include_usage: bool, created: int | None = None, **extra: Any
) -> Chunk:
    """Builds the chunks of one stream: same id, creation time and model on every chunk."""
    created = int(time.time()) if created is None else created

    def chunk(choices: list[dict[str, Any]], usage: dict | None = None) -> str:
        body = {"id": chunk_id, "object": kind, "created": created, "model": model, **extra, "choices": choices}
        if include_usage:
            body["usage"] = usage  # null on every chunk but the last, as OpenAI sends it
        return sse(body)

    return chunk


async def _choices_stream(
    active: ActiveGeneration,
    chunk: Chunk,
    include_usage: bool,
    delta: Callable[[int, GenerationChunk], dict[str, Any]],
    closing: Callable[[int, GenerationResult], dict[str, Any]],
) -> AsyncIterator[str]:
    """Token chunks as produced, one closing chunk per choice, the usage chunk, then [DONE]."""
    try:
        async for index, part in active.chunks():
            if part.text or part.logprobs or part.tool_calls:
                yield chunk([delta(index, part)])
    except OutriderError as exc:
        yield sse(stream_error("openai", exc))
        yield DONE
        return
    for index, result in enumerate(active.results):
        yield chunk([closing(index, result)])
    if include_usage:
        yield chunk([], usage_dict(active.usage))
    yield DONE


async def chat_stream(
    active: ActiveGeneration, model: str, include_usage: bool, want_logprobs: bool
) -> AsyncIterator[str]:
    chunk = _chunker("chat.completion.chunk", new_id("chatcmpl"), model, include_usage, system_fingerprint=None)
    for index in range(len(active.streams)):
        role = {"role": "assistant", "content": ""}
        yield chunk([{"index": index, "delta": role, "logprobs": None, "finish_reason": None}])
    async for line in _choices_stream(
        active,
        chunk,
        include_usage,
        lambda index, part: {
            "index": index,
            "delta": chat_delta(part),
            "logprobs": chat_logprobs(part.logprobs) if want_logprobs else None,
            "finish_reason": None,
        },
        lambda index, result: {
            "index": index,
            "delta": {},
            "logprobs": None,
            "finish_reason": FINISH[result.finish_reason],
        },
    ):
        yield line


def chat_delta(part: GenerationChunk) -> dict[str, Any]:
    """A chunk's delta: its text, and pieces of tool calls (id, type and name on a call's first piece only)."""
    if not part.tool_calls:
        return {"content": part.text}
    delta: dict[str, Any] = {"content": part.text} if part.text else {}
    delta["tool_calls"] = [
        {
            "index": piece.index,
            **({"id": piece.id, "type": "function"} if piece.id else {}),
            "function": {**({"name": piece.name} if piece.name else {}), "arguments": piece.arguments},
        }
        for piece in part.tool_calls
    ]
    return delta


async def extraction_chat_stream(completion: dict[str, Any], include_usage: bool) -> AsyncIterator[str]:
    """A schema-extraction answer, streamed as one content chunk."""
    chunk = _chunker(
        "chat.completion.chunk",
        completion["id"],
        completion["model"],
        include_usage,
        completion["created"],
        system_fingerprint=None,
    )
    content = completion["choices"][0]["message"]["content"]
    for delta in ({"role": "assistant", "content": ""}, {"content": content}):
        yield chunk([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}])
    yield chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}])
    if include_usage:
        yield chunk([], completion["usage"])
    yield DONE


async def completion_stream(
    active: ActiveGeneration, model: str, include_usage: bool, want_logprobs: bool
) -> AsyncIterator[str]:
    chunk = _chunker("text_completion", new_id("cmpl"), model, include_usage)
    async for line in _choices_stream(
        active,
        chunk,
        include_usage,
        lambda index, part: {
            "index": index,
            "text": part.text,
            "logprobs": completion_logprobs(part.logprobs) if want_logprobs else None,
            "finish_reason": None,
        },
        lambda index, result: {
            "index": index,
            "text": "",
            "logprobs": None,
            "finish_reason": FINISH[result.finish_reason],
        },
    ):
        yield line


async def responses_stream(active: ActiveGeneration, model: str, tools: bool = False) -> AsyncIterator[str]:
    """The Responses API event sequence, each event named and numbered. Without ``tools`` the answer is one
    message, opened at once; with them output items open as they begin (the message at its first text, a
    function call at its first piece). All close, in order, once generation ends."""
    response_id, message_id = new_id("resp"), new_id("msg")
    params = active.request.params  # echoed in the response objects of the events
    sequence = 0

    def event(kind: str, **fields: Any) -> str:
        nonlocal sequence
        sequence += 1
        return sse({"type": kind, "sequence_number": sequence, **fields}, event=kind)

    item = {"type": "message", "id": message_id, "status": "in_progress", "role": "assistant", "content": []}
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    message_at: int | None = None  # the message's output index, once it has one
    calls: dict[int, _OpenCall] = {}  # by tool-call index

    def open_message() -> list[str]:
        nonlocal message_at
        message_at = len(calls)  # the items opened before it are calls
        return [
            event("response.output_item.added", output_index=message_at, item=item),
            event(
                "response.content_part.added", item_id=message_id, output_index=message_at, content_index=0, part=part
            ),
        ]

    yield event(
        "response.created", response=response_object(response_id, model, None, None, "in_progress", params=params)
    )
    yield event(
        "response.in_progress", response=response_object(response_id, model, None, None, "in_progress", params=params)
    )
    if not tools:
        for line in open_message():
            yield line
    text = []
    try:
        async for _, chunk in active.chunks():
            if chunk.text:
                if message_at is None:
                    for line in open_message():
                        yield line
                text.append(chunk.text)
                yield event(
                    "response.output_text.delta",
                    item_id=message_id,
                    output_index=message_at,
                    content_index=0,
                    delta=chunk.text,
                    logprobs=[],
                )
            for piece in chunk.tool_calls:
                call = calls.get(piece.index)
                if call is None:
                    output_index = len(calls) + (message_at is not None)
                    call = calls[piece.index] = _OpenCall(output_index, piece.id or new_id("call"), piece.name or "")
                    yield event("response.output_item.added", output_index=output_index, item=call.item("in_progress"))
                if piece.arguments:
                    call.arguments.append(piece.arguments)
                    yield event(
                        "response.function_call_arguments.delta",
                        item_id=call.item_id,
                        output_index=call.output_index,
                        delta=piece.arguments,
                    )
    except OutriderError as exc:
        yield event("error", **responses_stream_error(exc))
        return
    if message_at is None and not calls:  # an empty answer: an empty message, as the whole answer has
        for line in open_message():
            yield line
    full = "".join(text)
    result = active.results[0]
    if message_at is not None:
        done_part = {**part, "text": full}
        done = {"item_id": message_id, "output_index": message_at, "content_index": 0}
        yield event("response.output_text.done", **done, text=full, logprobs=[])
        yield event("response.content_part.done", **done, part=done_part)
        yield event(
            "response.output_item.done",
            output_index=message_at,
            item={**item, "status": "completed", "content": [done_part]},
        )
    for call in calls.values():
        finished = call.item("completed")
        yield event(
            "response.function_call_arguments.done",
            item_id=call.item_id,
            output_index=call.output_index,
            name=call.name,
            arguments=finished["arguments"],
        )
        yield event("response.output_item.done", output_index=call.output_index, item=finished)
    incomplete = "max_output_tokens" if result.finish_reason == "length" else None
    status = "incomplete" if incomplete else "completed"
    final = response_object(
        response_id,
        model,
        full,
        active.usage,
        status,
        incomplete,
        message_id,
        tool_calls=result.tool_calls,
        params=params,
    )
    yield event("response.incomplete" if incomplete else "response.completed", response=final)


class _OpenCall:
    """A function call being streamed as a Responses output item."""

    def __init__(self, output_index: int, call_id: str, name: str) -> None:
        self.output_index, self.call_id, self.name = output_index, call_id, name
        self.arguments: list[str] = []

    @property
    def item_id(self) -> str:
        return function_call_item(ToolCall(self.call_id, self.name, ""))["id"]

    def item(self, status: str) -> dict[str, Any]:
        return function_call_item(ToolCall(self.call_id, self.name, "".join(self.arguments)), status)
