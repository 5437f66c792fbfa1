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
from outrider.core.messages import GenerationChunk, GenerationResult
from outrider.services.generation import ActiveGeneration

from .conversion import FINISH, chat_logprobs, completion_logprobs, response_object, usage_dict

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
            if part.text or part.logprobs:
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
            "delta": {"content": part.text},
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


async def responses_stream(active: ActiveGeneration, model: str) -> AsyncIterator[str]:
    """The Responses API event sequence, each event named and numbered."""
    response_id, message_id = new_id("resp"), new_id("msg")
    sequence = 0

    def event(kind: str, **fields: Any) -> str:
        nonlocal sequence
        sequence += 1
        return sse({"type": kind, "sequence_number": sequence, **fields}, event=kind)

    item = {"type": "message", "id": message_id, "status": "in_progress", "role": "assistant", "content": []}
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    yield event("response.created", response=response_object(response_id, model, None, None, "in_progress"))
    yield event("response.in_progress", response=response_object(response_id, model, None, None, "in_progress"))
    yield event("response.output_item.added", output_index=0, item=item)
    yield event("response.content_part.added", item_id=message_id, output_index=0, content_index=0, part=part)
    text = []
    try:
        async for _, chunk in active.chunks():
            if chunk.text:
                text.append(chunk.text)
                yield event(
                    "response.output_text.delta",
                    item_id=message_id,
                    output_index=0,
                    content_index=0,
                    delta=chunk.text,
                    logprobs=[],
                )
    except OutriderError as exc:
        yield event("error", **responses_stream_error(exc))
        return
    full = "".join(text)
    result = active.results[0]
    done_part = {**part, "text": full}
    yield event(
        "response.output_text.done", item_id=message_id, output_index=0, content_index=0, text=full, logprobs=[]
    )
    yield event("response.content_part.done", item_id=message_id, output_index=0, content_index=0, part=done_part)
    yield event(
        "response.output_item.done", output_index=0, item={**item, "status": "completed", "content": [done_part]}
    )
    incomplete = "max_output_tokens" if result.finish_reason == "length" else None
    final = response_object(
        response_id, model, full, active.usage, "incomplete" if incomplete else "completed", incomplete, message_id
    )
    yield event("response.incomplete" if incomplete else "response.completed", response=final)
