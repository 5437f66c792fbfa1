"""OpenAI streaming: chat and completion chunks, Responses API events, ``data: [DONE]``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from outrider.api.errors import envelope
from outrider.api.sse import sse
from outrider.core.errors import OutriderError
from outrider.core.ids import new_id
from outrider.services.generation import ActiveGeneration

from .conversion import FINISH, chat_logprobs, completion_logprobs, response_object, usage_dict

DONE = "data: [DONE]\n\n"


def _error_event(exc: OutriderError) -> str:
    return sse(envelope("openai", exc.status_code, exc.message, code=exc.code, param=exc.param))


async def chat_stream(
    active: ActiveGeneration, model: str, include_usage: bool, want_logprobs: bool
) -> AsyncIterator[str]:
    completion_id, created = new_id("chatcmpl"), int(time.time())

    def chunk(choices: list[dict[str, Any]], usage: dict | None = None) -> str:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": choices,
        }
        if include_usage:
            body["usage"] = usage
        return sse(body)

    for index in range(len(active.streams)):
        yield chunk(
            [{"index": index, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}]
        )
    try:
        async for index, part in active.chunks():
            if not part.text and not part.logprobs:
                continue
            logprobs = chat_logprobs(part.logprobs) if want_logprobs else None
            yield chunk(
                [{"index": index, "delta": {"content": part.text}, "logprobs": logprobs, "finish_reason": None}]
            )
    except OutriderError as exc:
        yield _error_event(exc)
        yield DONE
        return
    for index, result in enumerate(active.results):
        yield chunk([{"index": index, "delta": {}, "logprobs": None, "finish_reason": FINISH[result.finish_reason]}])
    if include_usage:
        yield chunk([], usage_dict(active.usage))
    yield DONE


async def extraction_chat_stream(completion: dict[str, Any], include_usage: bool) -> AsyncIterator[str]:
    """A schema-extraction answer, streamed as one content chunk."""
    base = {
        "id": completion["id"],
        "object": "chat.completion.chunk",
        "created": completion["created"],
        "model": completion["model"],
        "system_fingerprint": None,
    }
    extra = {"usage": None} if include_usage else {}
    content = completion["choices"][0]["message"]["content"]
    for delta in ({"role": "assistant", "content": ""}, {"content": content}):
        yield sse({**base, **extra, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]})
    yield sse({**base, **extra, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]})
    if include_usage:
        yield sse({**base, "choices": [], "usage": completion["usage"]})
    yield DONE


async def completion_stream(
    active: ActiveGeneration, model: str, include_usage: bool, want_logprobs: bool
) -> AsyncIterator[str]:
    completion_id, created = new_id("cmpl"), int(time.time())

    def chunk(choices: list[dict[str, Any]], usage: dict | None = None) -> str:
        body = {
            "id": completion_id,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": choices,
        }
        if include_usage:
            body["usage"] = usage
        return sse(body)

    try:
        async for index, part in active.chunks():
            if not part.text and not part.logprobs:
                continue
            logprobs = completion_logprobs(part.logprobs) if want_logprobs else None
            yield chunk([{"index": index, "text": part.text, "logprobs": logprobs, "finish_reason": None}])
    except OutriderError as exc:
        yield _error_event(exc)
        yield DONE
        return
    for index, result in enumerate(active.results):
        yield chunk([{"index": index, "text": "", "logprobs": None, "finish_reason": FINISH[result.finish_reason]}])
    if include_usage:
        yield chunk([], usage_dict(active.usage))
    yield DONE


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
        yield event("error", code=exc.code, message=exc.message, param=exc.param)
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
