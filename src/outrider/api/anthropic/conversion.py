"""Anthropic wire format <-> neutral types."""

from __future__ import annotations

import json
from typing import Any

from outrider.core.capabilities import required_capabilities, tools_requested
from outrider.core.errors import InvalidImage, InvalidRequest
from outrider.core.images import image_from_base64, image_from_url, message_of
from outrider.core.messages import ChatMessage, ContentPart, GenerationParams, GenerationResult, ImagePart, TextPart
from outrider.core.usage import Usage
from outrider.services.generation import GenerationRequest
from outrider.services.routing import RoutingOptions

from .schemas import ContentBlock, MessagesRequest

STOP_REASON = {"stop": "end_turn", "length": "max_tokens", "stop_sequence": "stop_sequence", "cancelled": "end_turn"}


def blocks_parts(content: str | list[ContentBlock], where: str) -> list[ContentPart]:
    """Text and image blocks as neutral parts in order; other block types are refused, naming the block."""
    if isinstance(content, str):
        return [TextPart(content)]
    parts: list[ContentPart] = []
    for index, block in enumerate(content):
        at = f"{where}.content[{index}]"
        if block.type == "image":
            parts.append(_image(block, at))
        elif block.type == "text" and block.text is not None:
            parts.append(TextPart(block.text))
        else:
            raise InvalidRequest(
                f"{at}: only text and image content blocks are supported, got '{block.type}'",
                param=f"{where}.content",
            )
    return parts


def _image(block: ContentBlock, where: str) -> ImagePart:
    source = block.source
    if source is None:
        raise InvalidImage(f"{where}: an image block needs a 'source'", param=where)
    if source.type == "base64" and source.media_type and source.data is not None:
        return image_from_base64(source.media_type, source.data, where)
    if source.type == "url" and source.url:
        return image_from_url(source.url, where)
    raise InvalidImage(
        f"{where}: an image source is {{type: base64, media_type, data}} or {{type: url, url}}; got type "
        f"'{source.type}'",
        param=where,
    )


def to_messages(body: MessagesRequest) -> list[ChatMessage]:
    messages = []
    if body.system:
        messages.append(message_of("system", blocks_parts(body.system, "system")))
    for index, message in enumerate(body.messages):
        messages.append(message_of(message.role, blocks_parts(message.content, f"messages[{index}]")))
    return messages


def to_request(body: MessagesRequest) -> GenerationRequest:
    params = GenerationParams(
        max_tokens=body.max_tokens,
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        stop=tuple(body.stop_sequences or ()),
        stream=bool(body.stream),
    )
    routing = RoutingOptions.from_wire(body.routing)
    messages = to_messages(body)
    return GenerationRequest(
        model_id=body.model,
        messages=messages,
        params=params,
        routing=routing,
        required_capabilities=required_capabilities(messages, tools=tools_requested(body.tools, body.tool_choice)),
    )


def usage_dict(usage: Usage) -> dict[str, Any]:
    """Anthropic's usage: ``input_tokens`` leaves out the tokens read from or written to a prompt cache."""
    return {
        "input_tokens": usage.uncached_prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "cost": usage.cost_usd,
    }


def message(message_id: str, model: str, result: GenerationResult, usage: Usage) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": result.text}],
        "stop_reason": STOP_REASON[result.finish_reason],
        "stop_sequence": result.stop_sequence,
        "usage": usage_dict(usage),
    }


def extraction_message(message_id: str, model: str, result: Any, usage: Usage) -> dict[str, Any]:
    text = json.dumps(result, ensure_ascii=False)
    generated = GenerationResult(
        text=text, finish_reason="stop", prompt_tokens=usage.prompt_tokens, completion_tokens=0
    )
    return message(message_id, model, generated, usage)
