"""OpenAI wire format <-> neutral types."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from typing import Any

import numpy as np

from outrider.api.wire_tools import parse_wire
from outrider.backends.base import ModelSpec
from outrider.core.capabilities import required_capabilities, tools_requested
from outrider.core.embeddings import EmbeddingRequest
from outrider.core.errors import InvalidImage, InvalidRequest, InvalidTools
from outrider.core.ids import new_id
from outrider.core.images import image_from_url, message_of
from outrider.core.messages import (
    ChatMessage,
    ContentPart,
    GenerationParams,
    GenerationResult,
    TokenLogprob,
    ToolCall,
    ToolChoice,
    ToolDefinition,
)
from outrider.core.messages import TextPart as TextContent
from outrider.core.usage import Usage
from outrider.services.embeddings import EmbeddingOutcome
from outrider.services.generation import GenerationRequest
from outrider.services.routing import RoutingOptions

from .schemas import (
    ChatCompletionRequest,
    ChatMessageIn,
    ChatNamedChoice,
    ChatToolIn,
    CompletionRequest,
    EmbeddingsRequest,
    FunctionCallItem,
    FunctionCallOutputItem,
    ImageUrlPart,
    ResponsesNamedChoice,
    ResponsesPart,
    ResponsesRequest,
    ResponsesToolIn,
    TextPart,
)

DEFAULT_MAX_TOKENS = 256
FINISH = {"stop": "stop", "stop_sequence": "stop", "length": "length", "cancelled": "stop", "tool_calls": "tool_calls"}
CHOICE_MODES = ("auto", "none", "required")


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


def text_of(content: str | list[Any] | None) -> str:
    """The text of a content that may only carry text (tool results): image parts there are ignored."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content if isinstance(part, TextPart))


def chat_messages(messages: list[ChatMessageIn]) -> list[ChatMessage]:
    out = []
    for index, message in enumerate(messages):
        content = text_of(message.content)
        if message.role == "tool":
            if not message.tool_call_id:
                raise InvalidTools(f"messages[{index}]: a tool message needs its 'tool_call_id'", param="messages")
            out.append(ChatMessage("tool", content, tool_call_id=message.tool_call_id))
            continue
        role = "system" if message.role == "developer" else message.role
        message_in = message_of(role, content_parts(message.content, f"messages[{index}].content"))
        calls = tuple(ToolCall(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or ())
        out.append(replace(message_in, tool_calls=calls) if calls and role == "assistant" else message_in)
    return out


def _tool_params(
    tools: list[Any] | None, choice: str | dict[str, Any] | None, parallel: bool | None, *, flat: bool
) -> dict[str, Any]:
    """Tools, tool_choice and parallel_tool_calls as neutral parameters; ``flat``: Responses' shapes (the
    function's fields beside ``type``), else chat's (nested under ``function``)."""
    definitions = []
    for index, raw in enumerate(tools or ()):
        where = f"tools[{index}]"
        if isinstance(raw, dict) and raw.get("type", "function") != "function":
            raise InvalidTools(f"{where}: only function tools are supported, got '{raw.get('type')}'", param=where)
        function = parse_wire(ResponsesToolIn, raw, where) if flat else parse_wire(ChatToolIn, raw, where).function
        parameters = function.parameters if function.parameters is not None else {"type": "object", "properties": {}}
        definitions.append(ToolDefinition(function.name, function.description or "", parameters))
    out: dict[str, Any] = {"tools": tuple(definitions), "tool_choice": _tool_choice(choice, flat)}
    if parallel is not None:
        out["parallel_tool_calls"] = parallel
    return out


def _tool_choice(choice: str | dict[str, Any] | None, flat: bool) -> ToolChoice:
    if choice is None:
        return ToolChoice()
    if isinstance(choice, str):
        if choice not in CHOICE_MODES:
            raise InvalidTools(
                f"tool_choice must be one of {list(CHOICE_MODES)} or a named function", param="tool_choice"
            )
        return ToolChoice(choice)  # type: ignore[arg-type]
    name = (
        parse_wire(ResponsesNamedChoice, choice, "tool_choice").name
        if flat
        else parse_wire(ChatNamedChoice, choice, "tool_choice").function.name
    )
    return ToolChoice("tool", name)


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
        **_tool_params(body.tools, body.tool_choice, body.parallel_tool_calls, flat=False),
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
        if isinstance(item, FunctionCallItem):
            call = ToolCall(item.call_id, item.name, item.arguments)
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant":  # calls after the assistant's text: one turn
                messages[-1] = replace(last, tool_calls=(*last.tool_calls, call))
            else:
                messages.append(ChatMessage("assistant", "", tool_calls=(call,)))
        elif isinstance(item, FunctionCallOutputItem):
            messages.append(ChatMessage("tool", text_of(item.output), tool_call_id=item.call_id))
        else:
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
        **_tool_params(body.tools, body.tool_choice, body.parallel_tool_calls, flat=True),
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
                "message": chat_message(r),
                "logprobs": chat_logprobs(r.logprobs) if want_logprobs else None,
                "finish_reason": FINISH[r.finish_reason],
            }
            for i, r in enumerate(results)
        ],
        "usage": usage_dict(usage),
        "system_fingerprint": None,
    }


def chat_message(result: GenerationResult) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": result.text, "refusal": None}
    if result.tool_calls:
        message["content"] = result.text or None  # as OpenAI answers a call without text
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in result.tool_calls
        ]
    return message


def function_call_item(call: ToolCall, status: str = "completed") -> dict[str, Any]:
    """A Responses output item for one tool call; its ``id`` is derived from the call's, so it is stable."""
    return {
        "type": "function_call",
        "id": f"fc_{call.id}",
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
        "status": status,
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
    tool_calls: tuple[ToolCall, ...] = (),
    params: GenerationParams | None = None,
) -> dict[str, Any]:
    """A Responses object; ``params`` (the request's) are echoed as OpenAI echoes them: the tools, the tool
    choice, parallel calls and the sampling settings."""
    output = []
    if text is not None and (text or not tool_calls):  # a call without text has no message item
        output.append(
            {
                "type": "message",
                "id": message_id or new_id("msg"),
                "status": "completed" if status != "in_progress" else "in_progress",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
            }
        )
    output.extend(function_call_item(call) for call in tool_calls)
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
        **_echoed(params),
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


def _echoed(params: GenerationParams | None) -> dict[str, Any]:
    if params is None:  # schema extraction answers: no generation settings
        return {"parallel_tool_calls": False, "tool_choice": "none", "tools": [], "temperature": None, "top_p": None}
    choice = params.tool_choice
    return {
        "parallel_tool_calls": params.parallel_tool_calls,
        "tool_choice": {"type": "function", "name": choice.name} if choice.mode == "tool" else choice.mode,
        "tools": [
            {"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters}
            for t in params.tools
        ],
        "temperature": params.temperature,
        "top_p": params.top_p,
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
