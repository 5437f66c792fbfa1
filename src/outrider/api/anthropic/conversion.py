"""Anthropic wire format <-> neutral types."""

from __future__ import annotations

import json
from typing import Any

from outrider.core.errors import InvalidRequest
from outrider.core.messages import ChatMessage, GenerationParams, GenerationResult
from outrider.core.usage import Usage
from outrider.services.generation import GenerationRequest
from outrider.services.routing import RoutingOptions

from .schemas import ContentBlock, MessagesRequest

STOP_REASON = {"stop": "end_turn", "length": "max_tokens", "stop_sequence": "stop_sequence", "cancelled": "end_turn"}


def blocks_text(content: str | list[ContentBlock], where: str) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for index, block in enumerate(content):
        if block.type != "text" or block.text is None:
            raise InvalidRequest(
                f"{where}.content[{index}]: only text content blocks are supported, got '{block.type}'",
                param=f"{where}.content",
            )
        parts.append(block.text)
    return "".join(parts)


def to_messages(body: MessagesRequest) -> list[ChatMessage]:
    messages = []
    if body.system:
        messages.append(ChatMessage("system", blocks_text(body.system, "system")))
    for index, message in enumerate(body.messages):
        messages.append(ChatMessage(message.role, blocks_text(message.content, f"messages[{index}]")))
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
    return GenerationRequest(model_id=body.model, messages=to_messages(body), params=params, routing=routing)


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
