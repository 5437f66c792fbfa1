"""Anthropic upstreams: neutral messages and parameters -> ``POST {base_url}/v1/messages`` with
``stream: true``; the Messages event stream -> ``GenerationChunk``s (a caller that wants only the whole
answer gets a non-streamed request, whose message becomes one chunk).

Differences bridged here:
- system messages become the top-level ``system``; consecutive turns of one role are merged, and
  tool-result turns become user turns.
- images become ``image`` blocks, with a ``url`` or ``base64`` source (OpenAI's ``detail`` has no equivalent).
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
from outrider.core.messages import ChatMessage, FinishReason, GenerationChunk, GenerationParams, ImagePart

ANTHROPIC_VERSION = "2023-06-01"
JSON_TOOL = "json_output"
_PROMPT_USAGE_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
STOP_REASON: dict[str, FinishReason] = {
    "end_turn": "stop",
    "max_tokens": "length",
    "stop_sequence": "stop_sequence",
    "tool_use": "stop",  # the forced JSON tool: its input is the answer
}


def messages_body(
    model: str, prompt: list[ChatMessage] | str, params: GenerationParams, *, sampling: bool = True
) -> dict[str, Any]:
    messages = prompt if isinstance(prompt, list) else [ChatMessage("user", prompt)]
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] = _merged(turns[-1]["content"], message_content(message))
        else:
            turns.append({"role": role, "content": message_content(message)})
    body: dict[str, Any] = {"model": model, "max_tokens": params.max_tokens, "messages": turns, "stream": params.stream}
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
    elif params.json_mode:
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


def _merged(first: str | list[dict[str, Any]], second: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Two consecutive turns of one role as one (Anthropic wants roles to alternate)."""
    if isinstance(first, str) and isinstance(second, str):
        return first + "\n\n" + second

    def blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"type": "text", "text": content}] if isinstance(content, str) else content

    return blocks(first) + blocks(second)


class AnthropicStream(UpstreamStream):
    """Text (or forced-tool JSON) deltas of an Anthropic Messages stream."""

    def __init__(self, call: UpstreamCall) -> None:
        super().__init__(call)
        self._stopped = False
        self._pending: list[GenerationChunk] = []  # text read before iteration started (none, in practice)

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
            text = delta.get("text") if delta.get("type") == "text_delta" else delta.get("partial_json")
            return [*pending, GenerationChunk(text)] if text else pending
        if kind == "message_start":
            usage = (payload.get("message") or {}).get("usage") or {}
            self._record_usage(usage)
        elif kind == "content_block_start":
            block = payload.get("content_block") or {}
            if block.get("type") == "text" and block.get("text"):
                return [*pending, GenerationChunk(block["text"])]
        elif kind == "message_delta":
            delta = payload.get("delta") or {}
            if delta.get("stop_reason"):
                self.finish_reason = STOP_REASON.get(delta["stop_reason"], "stop")
                self.stop_sequence = delta.get("stop_sequence")
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
        parts = []
        for block in payload.get("content") or ():
            if block.get("type") == "text":
                parts.append(block.get("text") or "")
            elif block.get("type") == "tool_use" and block.get("name") == JSON_TOOL:
                parts.append(json.dumps(block.get("input") or {}))
        if payload.get("stop_reason"):
            self.finish_reason = STOP_REASON.get(payload["stop_reason"], "stop")
            self.stop_sequence = payload.get("stop_sequence")
        text = "".join(parts)
        return [GenerationChunk(text)] if text else []

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
