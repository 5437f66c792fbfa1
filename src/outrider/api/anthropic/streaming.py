"""Anthropic's streaming event sequence: message_start, content_block_start, ping, content_block_delta...,
content_block_stop, message_delta (stop_reason, usage), message_stop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from outrider.api.errors import stream_error
from outrider.api.routed import routed_stream
from outrider.api.sse import sse
from outrider.core.errors import OutriderError
from outrider.services.generation import ActiveGeneration

from .conversion import STOP_REASON, usage_dict


def _event(kind: str, **fields: Any) -> str:
    return sse({"type": kind, **fields}, event=kind)


def routed(active: ActiveGeneration, events: AsyncIterator[str]) -> AsyncIterator[str]:
    """With ``model: "auto"`` the routing decision is the first event (``event: routing``), before
    ``message_start``; SDKs pass events of unknown types through or skip them."""
    return routed_stream(active, events, lambda decision: _event("routing", **decision))


def _start(message_id: str, model: str, usage: dict[str, Any]) -> list[str]:
    shell = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 0},
    }
    return [
        _event("message_start", message=shell),
        _event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        _event("ping"),
    ]


def _end(stop_reason: str, stop_sequence: str | None, usage: dict[str, Any]) -> list[str]:
    return [
        _event("content_block_stop", index=0),
        _event("message_delta", delta={"stop_reason": stop_reason, "stop_sequence": stop_sequence}, usage=usage),
        _event("message_stop"),
    ]


async def message_stream(active: ActiveGeneration, message_id: str, model: str) -> AsyncIterator[str]:
    early = usage_dict(active.early_usage)
    early.pop("cost")  # known at the end, in message_delta
    for line in _start(message_id, model, early):
        yield line
    try:
        async for _, chunk in active.chunks():
            if chunk.text:
                yield _event("content_block_delta", index=0, delta={"type": "text_delta", "text": chunk.text})
    except OutriderError as exc:
        yield sse(stream_error("anthropic", exc), event="error")
        return
    result = active.results[0]
    for line in _end(STOP_REASON[result.finish_reason], result.stop_sequence, usage_dict(active.usage)):
        yield line


async def extraction_stream(message: dict[str, Any]) -> AsyncIterator[str]:
    start_usage = {k: v for k, v in message["usage"].items() if k != "cost"}
    for line in _start(message["id"], message["model"], start_usage):
        yield line
    text = message["content"][0]["text"]
    yield _event("content_block_delta", index=0, delta={"type": "text_delta", "text": text})
    for line in _end("end_turn", None, message["usage"]):
        yield line
