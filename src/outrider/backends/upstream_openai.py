"""OpenAI-compatible upstreams (OpenAI, vLLM, llama.cpp server, Ollama, LiteLLM, another Outrider):
neutral messages and parameters -> ``POST {base_url}/chat/completions`` (or ``/completions``) with
``stream: true`` and ``stream_options.include_usage``; streamed chunks -> ``GenerationChunk``s. A caller
that wants only the whole answer gets a non-streamed request, whose JSON body becomes one chunk."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from outrider.backends.upstream_stream import UpstreamCall, UpstreamStream, parse_json
from outrider.core.errors import UpstreamError
from outrider.core.messages import (
    ChatMessage,
    FinishReason,
    GenerationChunk,
    GenerationParams,
    ImagePart,
    TokenLogprob,
)

FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length"}  # content_filter, tool_calls...: stop


def chat_body(
    model: str, messages: list[ChatMessage], params: GenerationParams, *, sampling: bool = True
) -> dict[str, Any]:
    body = {
        "model": model,
        # Tool results have no tool-call id here; the upstream sees them as user turns.
        "messages": [{"role": "user" if m.role == "tool" else m.role, "content": message_content(m)} for m in messages],
        **_common(params, sampling),
    }
    if params.logprobs:
        body["logprobs"] = True
        if params.top_logprobs:
            body["top_logprobs"] = params.top_logprobs
    if params.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": params.json_schema},
        }
    elif params.json_mode:
        body["response_format"] = {"type": "json_object"}
    return body


def message_content(message: ChatMessage) -> str | list[dict[str, Any]]:
    """The text, or with images its content parts in order: ``text`` and ``image_url`` (a URL or data: URL)."""
    if not message.parts:
        return message.content
    parts: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, ImagePart):
            image = {"url": part.data_url}
            if part.detail is not None:
                image["detail"] = part.detail
            parts.append({"type": "image_url", "image_url": image})
        else:
            parts.append({"type": "text", "text": part.text})
    return parts


def completion_body(model: str, prompt: str, params: GenerationParams, *, sampling: bool = True) -> dict[str, Any]:
    body = {"model": model, "prompt": prompt, **_common(params, sampling)}
    if params.logprobs:
        body["logprobs"] = max(params.top_logprobs, 0)
    return body


def _common(params: GenerationParams, sampling: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"max_tokens": params.max_tokens, "stream": params.stream}
    if params.stream:
        out["stream_options"] = {"include_usage": True}
    if sampling:  # reasoning models refuse these; their entries say sampling: false
        out["temperature"] = params.temperature
        out["top_p"] = params.top_p
    if params.stop:
        out["stop"] = list(params.stop)
    if params.seed is not None:
        out["seed"] = params.seed
    return out


class OpenAIStream(UpstreamStream):
    """Chat or text-completion chunks of an OpenAI-compatible stream."""

    def __init__(self, call: UpstreamCall, *, chat: bool, stops: tuple[str, ...]) -> None:
        super().__init__(call)
        self.chat = chat
        self.stops = stops
        self._finished = False

    def _done(self) -> bool:
        return self._finished

    def _handle(self, event: str | None, data: str) -> Iterable[GenerationChunk]:
        if data.strip() == "[DONE]":
            self._finished = True
            return ()
        payload = parse_json(self.call, data)
        self._check_error(payload)
        self._record_usage(payload.get("usage"))
        chunks = []
        for choice in payload.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # one choice per upstream request (Outrider sends n requests for n choices)
            text, logprobs = self._choice_delta(choice)
            if text or logprobs:
                chunks.append(GenerationChunk(text, logprobs))
            if choice.get("finish_reason"):
                self._finish(choice)
        return chunks

    def _handle_whole(self, payload: dict[str, Any]) -> Iterable[GenerationChunk]:
        """A non-streamed chat completion or completion: the same fields as a chunk's, ``message`` for
        ``delta``, usage always included."""
        self._finished = True
        self._check_error(payload)
        self._record_usage(payload.get("usage"))
        for choice in payload.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            text, logprobs = self._choice_delta(choice, "message")
            if choice.get("finish_reason"):
                self._finish(choice)
            return [GenerationChunk(text, logprobs)] if text or logprobs else []
        raise UpstreamError(f"upstream '{self.call.provider}' answered without a choice for '{self.call.model_id}'")

    def _record_usage(self, usage: object) -> None:
        """``prompt_tokens`` includes the ``prompt_tokens_details.cached_tokens`` read from OpenAI's prompt cache
        (OpenAI reports no cache writes)."""
        if not isinstance(usage, dict):
            return
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        self._usage(usage.get("prompt_tokens"), usage.get("completion_tokens"), cached)

    def _check_error(self, payload: dict[str, Any]) -> None:
        if "error" in payload:
            error = payload["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise UpstreamError(f"upstream '{self.call.provider}' failed during generation: {message}")

    def _choice_delta(self, choice: dict[str, Any], key: str = "delta") -> tuple[str, tuple[TokenLogprob, ...]]:
        raw = choice.get("logprobs")
        if self.chat:
            text = (choice.get(key) or {}).get("content") or ""
            entries = raw.get("content") if isinstance(raw, dict) else None
            logprobs = tuple(
                TokenLogprob(
                    e.get("token", ""),
                    float(e.get("logprob", 0.0)),
                    tuple((t.get("token", ""), float(t.get("logprob", 0.0))) for t in e.get("top_logprobs") or ()),
                )
                for e in entries or ()
            )
            return text, logprobs
        text = choice.get("text") or ""
        if not isinstance(raw, dict):
            return text, ()
        tokens, values = raw.get("tokens") or [], raw.get("token_logprobs") or []
        tops = raw.get("top_logprobs") or [None] * len(tokens)
        logprobs = tuple(
            TokenLogprob(token, float(value or 0.0), tuple((top or {}).items()))
            for token, value, top in zip(tokens, values, tops, strict=False)
        )
        return text, logprobs

    def _finish(self, choice: dict[str, Any]) -> None:
        self.finish_reason = FINISH.get(choice["finish_reason"], "stop")
        # vLLM (and Outrider) name the stop string that ended generation; OpenAI does not.
        matched = choice.get("stop_reason")
        if self.finish_reason == "stop" and isinstance(matched, str) and matched in self.stops:
            self.finish_reason = "stop_sequence"
            self.stop_sequence = matched
