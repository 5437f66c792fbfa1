"""Tool calling, surface-neutral: checking definitions and choices, and the JSON a local model's call must match.

A local decoder calls a tool by writing one JSON object ``{"name": ..., "arguments": {...}}``; constrained decoding
holds it to ``call_schema`` so the call always parses and its arguments validate against the tool's parameters.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema

from outrider.core.errors import InvalidTools
from outrider.core.messages import ChatMessage, ToolChoice, ToolDefinition

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what OpenAI and Anthropic both accept


def check_tools(tools: tuple[ToolDefinition, ...], choice: ToolChoice) -> None:
    """Reject bad definitions and a choice the tools cannot satisfy, before any model work (400)."""
    names: list[str] = []
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not TOOL_NAME.match(tool.name):
            raise InvalidTools(
                f"{where}: tool name {tool.name!r} must be 1 to 64 letters, digits, '_' or '-'", param=where
            )
        if tool.name in names:
            raise InvalidTools(f"{where}: tool name '{tool.name}' is defined twice", param=where)
        names.append(tool.name)
        check_parameters(tool.parameters, where)
    if choice.mode in ("required", "tool") and not tools:
        raise InvalidTools(
            f"tool_choice '{choice.mode}' needs tools to call, and none are defined", param="tool_choice"
        )
    if choice.mode == "tool" and choice.name not in names:
        raise InvalidTools(
            f"tool_choice names the tool {choice.name!r}, which is not among the tools defined ({names})",
            param="tool_choice",
        )


def check_parameters(parameters: Any, where: str) -> None:
    if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
        raise InvalidTools(f"{where}: a tool's parameters must be a JSON Schema of type 'object'", param=where)
    try:
        jsonschema.Draft202012Validator.check_schema(parameters)
    except jsonschema.SchemaError as exc:
        raise InvalidTools(f"{where}: parameters are not a valid JSON Schema: {exc.message}", param=where) from None


def check_tool_turns(messages: list[ChatMessage]) -> None:
    """Every tool result answers a call made earlier in the conversation."""
    called: set[str] = set()
    for index, message in enumerate(messages):
        called.update(call.id for call in message.tool_calls)
        if message.role == "tool" and message.tool_call_id not in called:
            raise InvalidTools(
                f"messages[{index}]: the tool result for {message.tool_call_id!r} follows no assistant tool call "
                "with that id",
                param=f"messages[{index}]",
            )


def offered(tools: tuple[ToolDefinition, ...], choice: ToolChoice) -> tuple[ToolDefinition, ...]:
    """The tools a call may use under ``choice``: none for ``none``, the named one for ``tool``."""
    if choice.mode == "none":
        return ()
    if choice.mode == "tool":
        return tuple(t for t in tools if t.name == choice.name)
    return tools


def call_schema(tools: tuple[ToolDefinition, ...]) -> dict[str, Any]:
    """The JSON Schema of one call of any of ``tools``: ``{"name": <that tool>, "arguments": <its parameters>}``,
    name first so that a streamed call names its tool before its arguments."""
    variants = [
        {
            "type": "object",
            "properties": {"name": {"const": tool.name}, "arguments": tool.parameters},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for tool in tools
    ]
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


def arguments_object(arguments: str) -> Any:
    """A call's arguments as a JSON object for formats that carry an object (Anthropic's ``input``); arguments that
    are not a JSON object (an upstream's invalid JSON) stay the raw string, as sent."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return arguments
    return value if isinstance(value, dict) else arguments


def arguments_text(value: Any) -> str:
    """The inverse of ``arguments_object``: a string is raw arguments text, anything else is serialised."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
