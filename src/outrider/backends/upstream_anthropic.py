"""Anthropic upstreams: neutral messages and parameters -> ``POST {base_url}/v1/messages`` with
``stream: true``; the Messages event stream -> ``GenerationChunk``s (a caller that wants only the whole
answer gets a non-streamed request, whose message becomes one chunk).

Differences bridged here:
- system messages become the top-level ``system``; consecutive turns of one role are merged; assistant tool
  calls become ``tool_use`` blocks (arguments that are not a JSON object go as the raw string) and tool results
  ``tool_result`` blocks of a user turn, placed before its text as Anthropic requires.
- images become ``image`` blocks, with a ``url`` or ``base64`` source (OpenAI's ``detail`` has no equivalent).
- tools: ``tool_choice`` required is ``any``, a named tool ``tool``, and ``parallel_tool_calls: false`` is
  ``disable_parallel_tool_use``. Streamed ``tool_use`` blocks become tool-call pieces (``input_json_delta``
  pieces are the arguments); ``stop_reason`` ``tool_use`` is the ``tool_calls`` finish.
- a raw completion prompt is sent as one user message (Anthropic has no raw completion endpoint).
- temperature is capped at 1.0 (Anthropic's maximum); temperature and top_p are sent only when they differ
  from the default 1.0, since recent models refuse both at once.
- ``seed`` and log-probabilities do not exist there: generation is unseeded and no logprobs come back.
- JSON: a JSON schema becomes Anthropic's structured outputs, ``output_config.format`` (constrained
  decoding; Claude Sonnet/Opus/Haiku 4.5 and later), whose text is the JSON. Plain JSON mode (no schema)
  uses the documented tool-use way: one tool taking any object, forced with ``tool_choice``; its input
  streams as ``input_json_delta`` events, which become the text of the answer.
- ``sampling: false`` on a model sends no temperature or top_p at all (the newest Claude models refuse them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from outrider.backends.upstream_stream import UpstreamCall, UpstreamStream, parse_json, token_count
from outrider.core.errors import RateLimited, UpstreamError
from outrider.core.messages import (
    ChatMessage,
    FinishReason,
    GenerationChunk,
    GenerationParams,
    ImagePart,
    ToolCallDelta,
)
from outrider.core.tools import arguments_object

ANTHROPIC_VERSION = "2023-06-01"
JSON_TOOL = "json_output"
_PROMPT_USAGE_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
STOP_REASON: dict[str, FinishReason] = {
    "end_turn": "stop",
    "max_tokens": "length",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_calls",  # but "stop" for the forced JSON tool, whose input is the answer
}
CHOICE_TYPES = {"auto": "auto", "none": "none", "required": "any", "tool": "tool"}


def messages_body(
    model: str, prompt: list[ChatMessage] | str, params: GenerationParams, *, sampling: bool = True
) -> dict[str, Any]:
    messages = prompt if isinstance(prompt, list) else [ChatMessage("user", prompt)]
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": params.max_tokens,
        "messages": _turns(messages),
        "stream": params.stream,
    }
    if system:
        body["system"] = system
    if sampling and params.temperature != 1.0:
        body["temperature"] = min(params.temperature, 1.0)
    if sampling and params.top_p != 1.0:
        body["top_p"] = params.top_p
    if params.stop:
        body["stop_sequences"] = list(params.stop)
    if params.json_schema is not None:
        body["output_config"] = {"format": {"type": "json_schema", "schema": params.json_schema}}
    if params.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in params.tools
        ]
        choice = params.tool_choice
        body["tool_choice"] = {"type": CHOICE_TYPES[choice.mode], **({"name": choice.name} if choice.name else {})}
        if not params.parallel_tool_calls and choice.mode != "none":
            body["tool_choice"]["disable_parallel_tool_use"] = True
    elif params.json_mode and params.json_schema is None:
        tool = {
            "name": JSON_TOOL,
            "description": "Give the answer as a JSON object.",
            "input_schema": {"type": "object"},
        }
        body["tools"] = [tool]
        body["tool_choice"] = {"type": "tool", "name": JSON_TOOL}
    return body


def message_content(message: ChatMessage) -> str | list[dict[str, Any]]:
    """The text, or with images its blocks in order: ``text`` and ``image`` (``url`` or ``base64`` source)."""
    if not message.parts:
        return message.content
    blocks: list[dict[str, Any]] = []
    for part in message.parts:
        if not isinstance(part, ImagePart):
            blocks.append({"type": "text", "text": part.text})
        elif part.url is not None:
            blocks.append({"type": "image", "source": {"type": "url", "url": part.url}})
        else:
            source = {"type": "base64", "media_type": part.media_type, "data": part.data}
            blocks.append({"type": "image", "source": source})
    return blocks


def _turns(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """Alternating user and assistant turns. Turns without tools keep plain string content (merged with blank
    lines); a turn with tool calls or results is a list of blocks, tool results first."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if turns and turns[-1]["role"] == role:
            previous = turns[-1]["content"]
            if isinstance(previous, str) and isinstance(blocks, str):
                turns[-1]["content"] = previous + "\n\n" + blocks
                continue
            merged = [*_as_blocks(previous), *_as_blocks(blocks)]
            # tool_result blocks must come first in a user turn
            merged.sort(key=lambda block: block["type"] != "tool_result")
            turns[-1]["content"] = merged
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _blocks(message: ChatMessage) -> str | list[dict[str, Any]]:
    if message.role == "tool":
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
        result["content"] = message.content
        if message.is_error:
            result["is_error"] = True
        return [result]
    if not message.tool_calls:
        return message_content(message)
    calls = [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": arguments_object(c.arguments)}
        for c in message.tool_calls
    ]
    return [*_as_blocks(message_content(message)), *calls]


def _as_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, list):
        return content
    return [{"type": "text", "text": content}] if content else []


class AnthropicStream(UpstreamStream):
    """Text (or forced-tool JSON) deltas of an Anthropic Messages stream."""

    def __init__(self, call: UpstreamCall) -> None:
        super().__init__(call)
        self._stopped = False
        self._pending: list[GenerationChunk] = []  # text read before iteration started (none, in practice)
        # JSON mode's forced tool (the only tool sent): its input is the answer's text, not a tool call.
        self._json_tool = [t.get("name") for t in call.body.get("tools") or ()] == [JSON_TOOL]
        self._call_of_block: dict[int, int] = {}  # content-block index -> tool-call index

    def _done(self) -> bool:
        return self._stopped

    async def _after_open(self) -> None:
        # message_start comes first and carries the prompt's token count: read it before the first token.
        item = await self._next_event()
        if item is not None:
            self._pending = list(self._handle(*item))

    def _handle(self, event: str | None, data: str) -> Iterable[GenerationChunk]:
        payload = parse_json(self.call, data)
        kind = payload.get("type") or event
        pending, self._pending = self._pending, []
        if kind == "content_block_delta":
            delta = payload.get("delta") or {}
            call = self._call_of_block.get(payload.get("index", -1))
            if call is not None and delta.get("type") == "input_json_delta":
                piece = delta.get("partial_json") or ""
                return [*pending, GenerationChunk("", tool_calls=(ToolCallDelta(call, arguments=piece),))]
            text = delta.get("text") if delta.get("type") == "text_delta" else delta.get("partial_json")
            return [*pending, GenerationChunk(text)] if text else pending
        if kind == "message_start":
            usage = (payload.get("message") or {}).get("usage") or {}
            self._record_usage(usage)
        elif kind == "content_block_start":
            block = payload.get("content_block") or {}
            if block.get("type") == "text" and block.get("text"):
                return [*pending, GenerationChunk(block["text"])]
            if block.get("type") == "tool_use" and not self._json_tool:
                call = len(self._call_of_block)
                self._call_of_block[payload.get("index", call)] = call
                start = ToolCallDelta(call, block.get("id") or None, block.get("name") or "")
                return [*pending, GenerationChunk("", tool_calls=(start,))]
        elif kind == "content_block_stop":
            call = self._call_of_block.get(payload.get("index", -1))
            if call is not None and call in self._calls and not "".join(self._calls[call][2]):
                # A call without arguments streams no input pieces (or an empty one): its input is {}.
                return [*pending, GenerationChunk("", tool_calls=(ToolCallDelta(call, arguments="{}"),))]
        elif kind == "message_delta":
            delta = payload.get("delta") or {}
            if delta.get("stop_reason"):
                self._stop(delta["stop_reason"], delta.get("stop_sequence"))
            self._record_usage(payload.get("usage") or {})
        elif kind == "message_stop":
            self._stopped = True
        elif kind == "error":
            self._raise_error(payload.get("error") or {})
        return pending

    def _handle_whole(self, payload: dict[str, Any]) -> Iterable[GenerationChunk]:
        """A non-streamed message: its text blocks (or the forced JSON tool's input), usage, stop reason."""
        self._stopped = True
        if payload.get("type") == "error":
            self._raise_error(payload.get("error") or {})
        self._record_usage(payload.get("usage") or {})
        parts, calls = [], []
        for block in payload.get("content") or ():
            if block.get("type") == "text":
                parts.append(block.get("text") or "")
            elif block.get("type") == "tool_use" and self._json_tool:
                parts.append(json.dumps(block.get("input") or {}))
            elif block.get("type") == "tool_use":
                tool_input = block.get("input")
                arguments = json.dumps(tool_input if tool_input is not None else {})
                calls.append(ToolCallDelta(len(calls), block.get("id") or None, block.get("name") or "", arguments))
        if payload.get("stop_reason"):
            self._stop(payload["stop_reason"], payload.get("stop_sequence"))
        text = "".join(parts)
        return [GenerationChunk(text, tool_calls=tuple(calls))] if text or calls else []

    def _stop(self, reason: str, stop_sequence: str | None) -> None:
        self.finish_reason = STOP_REASON.get(reason, "stop")
        if self._json_tool and self.finish_reason == "tool_calls":
            self.finish_reason = "stop"
        self.stop_sequence = stop_sequence

    def _record_usage(self, usage: dict[str, Any]) -> None:
        if not usage:
            return
        prompt = None
        if usage.get("input_tokens") is not None:
            # Anthropic's input_tokens leaves out the cached ones; Outrider's prompt_tokens counts them all.
            prompt = sum(token_count(usage.get(k)) for k in _PROMPT_USAGE_FIELDS)
        self._usage(
            prompt,
            usage.get("output_tokens"),
            usage.get("cache_read_input_tokens"),
            usage.get("cache_creation_input_tokens"),
        )

    def _raise_error(self, error: dict[str, Any]) -> None:
        kind, message = error.get("type", "api_error"), error.get("message", "unknown error")
        where = f"upstream '{self.call.provider}' failed during generation of model '{self.call.model_id}'"
        if kind == "rate_limit_error":
            limited = RateLimited(f"{where}: {message}")
            limited.code = "upstream_rate_limited"
            raise limited
        raise UpstreamError(f"{where}: {kind}: {message}")
