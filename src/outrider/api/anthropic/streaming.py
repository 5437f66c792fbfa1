"""Anthropic's streaming event sequence: message_start, content_block_start, ping, content_block_delta...,
content_block_stop, message_delta (stop_reason, usage), message_stop."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from outrider.api.errors import stream_error
from outrider.api.routed import routed_stream
from outrider.api.sse import sse
from outrider.core.errors import OutriderError
from outrider.core.messages import ToolCall, ToolCallDelta
from outrider.core.tools import arguments_object
from outrider.services.generation import ActiveGeneration

from .conversion import STOP_REASON, tool_use_block, usage_dict


def _event(kind: str, **fields: Any) -> str:
    return sse({"type": kind, **fields}, event=kind)


def routed(active: ActiveGeneration, events: AsyncIterator[str]) -> AsyncIterator[str]:
    """With ``model: "auto"`` the routing decision is the first event (``event: routing``), before
    ``message_start``; SDKs pass events of unknown types through or skip them."""
    return routed_stream(active, events, lambda decision: _event("routing", **decision))


def _message_start(message_id: str, model: str, usage: dict[str, Any]) -> list[str]:
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
    return [_event("message_start", message=shell)]


def _message_end(stop_reason: str, stop_sequence: str | None, usage: dict[str, Any]) -> list[str]:
    return [
        _event("message_delta", delta={"stop_reason": stop_reason, "stop_sequence": stop_sequence}, usage=usage),
        _event("message_stop"),
    ]


class _Blocks:
    """Content blocks opened as the answer needs them, one at a time: a text block at the first text, a tool_use
    block at each call's first piece. A call's input is sent once the call is complete: the SDKs parse each
    ``input_json_delta`` as it comes and fail on invalid JSON, so arguments that do not form a JSON object (an
    upstream's invalid JSON) are sent as one JSON string holding the raw text, the ``input`` the whole answer has."""

    def __init__(self) -> None:
        self.index = -1
        self.kind: str | int | None = None  # "text", or the tool-call index of the open tool_use block
        self.pieces: list[str] = []

    def open_text(self) -> list[str]:
        return self._open("text", {"type": "text", "text": ""})

    def text(self, text: str) -> list[str]:
        lines = self.open_text()
        return [*lines, _event("content_block_delta", index=self.index, delta={"type": "text_delta", "text": text})]

    def tool(self, piece: ToolCallDelta) -> list[str]:
        call = ToolCall(piece.id or "", piece.name or "", "")
        lines = self._open(piece.index, tool_use_block(call, {}))
        self.pieces.append(piece.arguments)
        return lines

    def close(self) -> list[str]:
        if self.kind is None:
            return []
        lines = []
        if self.kind != "text":
            pieces = [p for p in self.pieces if p]
            if not isinstance(arguments_object("".join(pieces)), dict):
                pieces = [json.dumps("".join(pieces), ensure_ascii=False)]
            lines = [
                _event("content_block_delta", index=self.index, delta={"type": "input_json_delta", "partial_json": p})
                for p in pieces
            ]
        self.kind, self.pieces = None, []
        return [*lines, _event("content_block_stop", index=self.index)]

    def _open(self, kind: str | int, block: dict[str, Any]) -> list[str]:
        if self.kind == kind:
            return []
        lines = self.close()
        self.index += 1
        self.kind = kind
        return [*lines, _event("content_block_start", index=self.index, content_block=block)]


async def message_stream(
    active: ActiveGeneration, message_id: str, model: str, tools: bool = False
) -> AsyncIterator[str]:
    """Without ``tools`` the answer is one text block, opened at once (before ``ping``, as Anthropic sends it);
    with them blocks open as the answer needs them."""
    early = usage_dict(active.early_usage)
    early.pop("cost")  # known at the end, in message_delta
    blocks = _Blocks()
    opening = [] if tools else blocks.open_text()
    for line in [*_message_start(message_id, model, early), *opening, _event("ping")]:
        yield line
    try:
        async for _, chunk in active.chunks():
            lines = blocks.text(chunk.text) if chunk.text else []
            for piece in chunk.tool_calls:
                lines += blocks.tool(piece)
            for line in lines:
                yield line
    except OutriderError as exc:
        yield sse(stream_error("anthropic", exc), event="error")
        return
    result = active.results[0]
    if blocks.index < 0:  # nothing was produced: the (empty) text block the whole answer has
        for line in blocks.open_text():
            yield line
    for line in [
        *blocks.close(),
        *_message_end(STOP_REASON[result.finish_reason], result.stop_sequence, usage_dict(active.usage)),
    ]:
        yield line


async def extraction_stream(message: dict[str, Any]) -> AsyncIterator[str]:
    start_usage = {k: v for k, v in message["usage"].items() if k != "cost"}
    blocks = _Blocks()
    for line in [
        *_message_start(message["id"], message["model"], start_usage),
        *blocks.open_text(),
        _event("ping"),
        *blocks.text(message["content"][0]["text"]),
        *blocks.close(),
        *_message_end("end_turn", None, message["usage"]),
    ]:
        yield line
