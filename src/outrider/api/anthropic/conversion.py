"""Anthropic wire format <-> neutral types."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from outrider.api.wire_tools import parse_wire
from outrider.core.capabilities import required_capabilities, tools_requested
from outrider.core.errors import InvalidImage, InvalidRequest, InvalidTools
from outrider.core.images import image_from_base64, image_from_url, message_of
from outrider.core.messages import (
    ChatMessage,
    ContentPart,
    GenerationParams,
    GenerationResult,
    ImagePart,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolDefinition,
)
from outrider.core.tools import arguments_object, arguments_text
from outrider.core.usage import Usage
from outrider.services.generation import GenerationRequest
from outrider.services.routing import RoutingOptions

from .schemas import ContentBlock, MessagesRequest, ToolChoiceIn, ToolIn

STOP_REASON = {
    "stop": "end_turn",
    "length": "max_tokens",
    "stop_sequence": "stop_sequence",
    "cancelled": "end_turn",
    "tool_calls": "tool_use",
}
CHOICE_MODES = {"auto": "auto", "any": "required", "tool": "tool", "none": "none"}


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


def blocks_text(content: str | list[ContentBlock], where: str) -> str:
    """The text of blocks that may carry only text (a tool result's content)."""
    parts = blocks_parts(content, where)
    if any(isinstance(p, ImagePart) for p in parts):
        raise InvalidImage(f"{where}: images in tool results are not supported", param=where)
    return "".join(p.text for p in parts if isinstance(p, TextPart))


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
        where = f"messages[{index}]"
        if isinstance(message.content, str):
            messages.append(ChatMessage(message.role, message.content))
        elif message.role == "assistant":
            messages.append(_assistant_turn(message.content, where))
        else:
            messages.extend(_user_turn(message.content, where))
    return messages


def _assistant_turn(blocks: list[ContentBlock], where: str) -> ChatMessage:
    """Text and ``tool_use`` blocks: one assistant message with its calls."""
    calls = tuple(
        ToolCall(block.id or "", block.name or "", arguments_text(block.input if block.input is not None else {}))
        for block in blocks
        if block.type == "tool_use"
    )
    if any(not call.id or not call.name for call in calls):
        raise InvalidTools(f"{where}: a tool_use block needs its 'id' and 'name'", param=f"{where}.content")
    message = message_of("assistant", blocks_parts([b for b in blocks if b.type != "tool_use"], where))
    return replace(message, tool_calls=calls)


def _user_turn(blocks: list[ContentBlock], where: str) -> list[ChatMessage]:
    """``tool_result`` blocks become tool messages (in order, as Anthropic puts them first), text a user message."""
    out = []
    for index, block in enumerate(blocks):
        if block.type != "tool_result":
            continue
        if not block.tool_use_id:
            raise InvalidTools(f"{where}.content[{index}]: a tool_result needs its 'tool_use_id'", param=where)
        result = block.content if block.content is not None else ""
        content = blocks_text(result, f"{where}.content[{index}]")
        out.append(ChatMessage("tool", content, tool_call_id=block.tool_use_id, is_error=block.is_error))
    text_blocks = [b for b in blocks if b.type != "tool_result"]
    if text_blocks or not out:
        out.append(message_of("user", blocks_parts(text_blocks, where)))
    return out


def _tool_params(body: MessagesRequest) -> dict[str, Any]:
    tools = tuple(
        ToolDefinition(tool.name, tool.description or "", tool.input_schema)
        for tool in (parse_wire(ToolIn, raw, f"tools[{i}]") for i, raw in enumerate(body.tools or ()))
    )
    if body.tool_choice is None:
        return {"tools": tools}
    choice = parse_wire(ToolChoiceIn, body.tool_choice, "tool_choice")
    if choice.type == "tool" and not choice.name:
        raise InvalidTools("tool_choice of type 'tool' needs the tool's 'name'", param="tool_choice")
    return {
        "tools": tools,
        "tool_choice": ToolChoice(CHOICE_MODES[choice.type], choice.name if choice.type == "tool" else None),
        "parallel_tool_calls": not choice.disable_parallel_tool_use,
    }


def to_request(body: MessagesRequest) -> GenerationRequest:
    params = GenerationParams(
        max_tokens=body.max_tokens,
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        stop=tuple(body.stop_sequences or ()),
        stream=bool(body.stream),
        **_tool_params(body),
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
        "content": content_blocks(result),
        "stop_reason": STOP_REASON[result.finish_reason],
        "stop_sequence": result.stop_sequence,
        "usage": usage_dict(usage),
    }


def content_blocks(result: GenerationResult) -> list[dict[str, Any]]:
    """The answer's text block (also when empty, unless it only calls tools), then one tool_use block per call."""
    blocks: list[dict[str, Any]] = []
    if result.text or not result.tool_calls:
        blocks.append({"type": "text", "text": result.text})
    blocks.extend(tool_use_block(call, arguments_object(call.arguments)) for call in result.tool_calls)
    return blocks


def tool_use_block(call: ToolCall, tool_input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": tool_input}


def extraction_message(message_id: str, model: str, result: Any, usage: Usage) -> dict[str, Any]:
    text = json.dumps(result, ensure_ascii=False)
    generated = GenerationResult(
        text=text, finish_reason="stop", prompt_tokens=usage.prompt_tokens, completion_tokens=0
    )
    return message(message_id, model, generated, usage)
