"""OpenAI wire format <-> neutral types."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import numpy as np

from outrider.backends.base import ModelSpec
from outrider.core.capabilities import required_capabilities, tools_requested
from outrider.core.embeddings import EmbeddingRequest
from outrider.core.errors import InvalidImage, InvalidRequest
from outrider.core.ids import new_id
from outrider.core.images import image_from_url, message_of
from outrider.core.messages import ChatMessage, ContentPart, GenerationParams, GenerationResult, TokenLogprob
from outrider.core.messages import TextPart as TextContent
from outrider.core.usage import Usage
from outrider.services.embeddings import EmbeddingOutcome
from outrider.services.generation import GenerationRequest
from outrider.services.routing import RoutingOptions

from .schemas import (
    ChatCompletionRequest,
    ChatMessageIn,
    CompletionRequest,
    EmbeddingsRequest,
    ImageUrlPart,
    ResponsesPart,
    ResponsesRequest,
    TextPart,
)

DEFAULT_MAX_TOKENS = 256
FINISH = {"stop": "stop", "stop_sequence": "stop", "length": "length", "cancelled": "stop"}


def content_parts(content: str | list[TextPart | ImageUrlPart | ResponsesPart] | None, where: str) -> list[ContentPart]:
    """A message's content as neutral parts in order; images checked (``InvalidImage`` names the part)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [TextContent(content)]
    parts: list[ContentPart] = []
    for index, part in enumerate(content):
        at = f"{where}[{index}]"
        if isinstance(part, TextPart):
            parts.append(TextContent(part.text))
        elif isinstance(part, ImageUrlPart):
            parts.append(image_from_url(part.image_url.url, at, part.image_url.detail))
        elif part.image_url is None:
            raise InvalidImage(f"{at}: uploaded files (file_id) are not supported; send image_url", param=at)
        else:
            parts.append(image_from_url(part.image_url, at, part.detail))
    return parts


def chat_messages(messages: list[ChatMessageIn]) -> list[ChatMessage]:
    out = []
    for index, message in enumerate(messages):
        if message.role == "tool":
            raise InvalidRequest(f"messages[{index}]: tool messages are not supported", param=f"messages[{index}]")
        role = "system" if message.role == "developer" else message.role
        out.append(message_of(role, content_parts(message.content, f"messages[{index}].content")))
    return out


def stops(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    return (stop,) if isinstance(stop, str) else tuple(stop)


def _json_params(kind: str | None, schema: dict | None) -> dict[str, Any]:
    if kind == "json_object":
        return {"json_mode": True}
    if kind == "json_schema":
        if not schema:
            raise InvalidRequest("response_format json_schema needs a 'schema'", param="response_format")
        return {"json_mode": True, "json_schema": schema}
    return {}


def to_chat_request(body: ChatCompletionRequest) -> GenerationRequest:
    fmt = body.response_format
    params = GenerationParams(
        max_tokens=body.max_completion_tokens or body.max_tokens or DEFAULT_MAX_TOKENS,
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        stop=stops(body.stop),
        seed=body.seed,
        logprobs=body.logprobs,
        top_logprobs=(body.top_logprobs or 0) if body.logprobs else 0,
        stream=bool(body.stream),
        **_json_params(fmt.type if fmt else None, fmt.json_schema.schema_ if fmt and fmt.json_schema else None),
    )
    messages = chat_messages(body.messages)
    return GenerationRequest(
        model_id=body.model,
        messages=messages,
        params=params,
        n=body.n,
        routing=RoutingOptions.from_wire(body.routing),
        required_capabilities=required_capabilities(messages, tools=tools_requested(body.tools, body.tool_choice)),
    )


def to_completion_request(body: CompletionRequest) -> GenerationRequest:
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    if len(prompts) != 1:
        raise InvalidRequest("send one prompt per request", param="prompt")
    params = GenerationParams(
        max_tokens=body.max_tokens or 16,  # OpenAI's default for /v1/completions
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        stop=stops(body.stop),
        seed=body.seed,
        logprobs=body.logprobs is not None,
        top_logprobs=body.logprobs or 0,
        stream=bool(body.stream),
    )
    return GenerationRequest(
        model_id=body.model, prompt=prompts[0], params=params, n=body.n, routing=RoutingOptions.from_wire(body.routing)
    )


def responses_messages(body: ResponsesRequest) -> list[ChatMessage]:
    messages = [ChatMessage("system", body.instructions)] if body.instructions else []
    if isinstance(body.input, str):
        return [*messages, ChatMessage("user", body.input)]
    for index, item in enumerate(body.input):
        role = "system" if item.role == "developer" else item.role
        messages.append(message_of(role, content_parts(item.content, f"input[{index}].content")))
    return messages


def to_responses_request(body: ResponsesRequest) -> GenerationRequest:
    fmt = body.text.format if body.text else None
    params = GenerationParams(
        max_tokens=body.max_output_tokens or DEFAULT_MAX_TOKENS,
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        stream=bool(body.stream),
        **_json_params(fmt.type if fmt else None, fmt.schema_ if fmt else None),
    )
    messages = responses_messages(body)
    return GenerationRequest(
        model_id=body.model,
        messages=messages,
        params=params,
        routing=RoutingOptions.from_wire(body.routing),
        required_capabilities=required_capabilities(messages, tools=tools_requested(body.tools, body.tool_choice)),
    )


# -- responses ---------------------------------------------------------------


def cache_extension(usage: Usage) -> dict[str, int]:
    """Outrider's extension of OpenAI's usage: prompt-cache reads (also ``cached_tokens``) and writes, which
    OpenAI's format has no field for (an Anthropic upstream's ``cache_creation_input_tokens``)."""
    return {"cache_read_tokens": usage.cache_read_tokens, "cache_write_tokens": usage.cache_write_tokens}


def usage_dict(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        **cache_extension(usage),
        "cost": usage.cost_usd,
    }


def _token_entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def chat_logprobs(logprobs: tuple[TokenLogprob, ...]) -> dict[str, Any]:
    return {
        "content": [
            {**_token_entry(lp.token, lp.logprob), "top_logprobs": [_token_entry(t, v) for t, v in lp.top]}
            for lp in logprobs
        ]
    }


def completion_logprobs(logprobs: tuple[TokenLogprob, ...], offset: int = 0) -> dict[str, Any]:
    offsets, position = [], offset
    for lp in logprobs:
        offsets.append(position)
        position += len(lp.token)
    return {
        "tokens": [lp.token for lp in logprobs],
        "token_logprobs": [lp.logprob for lp in logprobs],
        "top_logprobs": [dict(lp.top) for lp in logprobs],
        "text_offset": offsets,
    }


def chat_completion(
    completion_id: str, model: str, results: list[GenerationResult], usage: Usage, want_logprobs: bool
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": r.text, "refusal": None},
                "logprobs": chat_logprobs(r.logprobs) if want_logprobs else None,
                "finish_reason": FINISH[r.finish_reason],
            }
            for i, r in enumerate(results)
        ],
        "usage": usage_dict(usage),
        "system_fingerprint": None,
    }


def extraction_chat_completion(model: str, result: Any, usage: Usage) -> dict[str, Any]:
    text = json.dumps(result, ensure_ascii=False)
    generated = GenerationResult(
        text=text, finish_reason="stop", prompt_tokens=usage.prompt_tokens, completion_tokens=0
    )
    return chat_completion(new_id("chatcmpl"), model, [generated], usage, False)


def text_completion(
    completion_id: str,
    model: str,
    results: list[GenerationResult],
    usage: Usage,
    want_logprobs: bool,
    echo_prompt: str | None,
) -> dict[str, Any]:
    prefix = echo_prompt or ""
    return {
        "id": completion_id,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": i,
                "text": prefix + r.text,
                "logprobs": completion_logprobs(r.logprobs, len(prefix)) if want_logprobs else None,
                "finish_reason": FINISH[r.finish_reason],
            }
            for i, r in enumerate(results)
        ],
        "usage": usage_dict(usage),
    }


def response_object(
    response_id: str,
    model: str,
    text: str | None,
    usage: Usage | None,
    status: str,
    incomplete: str | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    output = []
    if text is not None:
        output.append(
            {
                "type": "message",
                "id": message_id or new_id("msg"),
                "status": "completed" if status != "in_progress" else "in_progress",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
            }
        )
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": model,
        "output": output,
        "error": None,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": None,
        "metadata": {},
        "parallel_tool_calls": False,
        "tool_choice": "none",
        "tools": [],
        "temperature": None,
        "top_p": None,
        "usage": None
        if usage is None
        else {
            "input_tokens": usage.prompt_tokens,
            "input_tokens_details": {"cached_tokens": usage.cache_read_tokens},
            "output_tokens": usage.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage.total_tokens,
            **cache_extension(usage),
            "cost": usage.cost_usd,
        },
    }


def model_object(spec: ModelSpec) -> dict[str, Any]:
    """OpenAI's model object, with Outrider's ``kind``: ``decoder`` (chat and completions), ``embedding``
    (``/v1/embeddings``) or ``encoder`` (schema extraction), and its ``capabilities`` (``vision``, ``tools``...)."""
    return {
        "id": spec.id,
        "object": "model",
        "created": 0,
        "owned_by": spec.owned_by,
        "kind": spec.kind,
        "capabilities": list(spec.capabilities),
    }


def to_embedding_request(body: EmbeddingsRequest) -> EmbeddingRequest:
    texts = [body.input] if isinstance(body.input, str) else body.input
    if any(not isinstance(text, str) for text in texts):
        raise InvalidRequest(
            "input as token ids is not supported (token ids belong to one tokenizer): send the text, as a string "
            "or a list of strings",
            param="input",
        )
    return EmbeddingRequest(texts=tuple(texts), dimensions=body.dimensions)


def embedding_list(model: str, outcome: EmbeddingOutcome, encoding_format: str) -> dict[str, Any]:
    """OpenAI's embedding list: floats, or base64 of little-endian float32 (what the SDKs decode)."""
    vectors: list[Any] = outcome.result.vectors
    if encoding_format == "base64":
        packed = np.asarray(vectors, dtype="<f4")
        vectors = [base64.b64encode(row.tobytes()).decode("ascii") for row in packed]
    usage = outcome.usage
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": vector} for i, vector in enumerate(vectors)],
        "model": model,
        "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.total_tokens, "cost": usage.cost_usd},
    }
