"""Tool calling on local decoders: the prompt that offers the tools, the constraint that makes a call valid, and the
stream that turns the model's call text into tool calls.

A local model calls a tool by writing one JSON object, ``{"name": "<tool>", "arguments": {...}}``
(``core.tools.call_schema``). How the choice is honoured:

- ``required`` and a named tool: the whole output is constrained to that object (llguidance), so the call always
  parses and its arguments validate against the tool's parameter schema.
- ``auto``: the model's first token decides (sampled, or greedy at temperature 0, from its unconstrained first
  step). A first token that can begin a call (``{"`` or ``{``) commits it to a call, which is then constrained to
  the schema like a forced one; any other first token is a text answer, left unconstrained.
- ``none``: plain text; tools are not offered in the prompt.

One call per answer (a small local model does not plan parallel calls). The tools reach the prompt through the
model's chat template when it takes ``tools`` (the Hugging Face convention); otherwise (SmolLM2's template has no
tool support) through ``TOOL_PROMPT`` in the system message, with past calls written in the same JSON format as
the assistant's text and tool results as user turns.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from outrider.core.errors import InvalidRequest, InvalidTools
from outrider.core.ids import new_id
from outrider.core.messages import (
    ChatMessage,
    GenerationChunk,
    GenerationParams,
    GenerationResult,
    GenerationStream,
    ToolCall,
    ToolCallDelta,
    ToolDefinition,
)
from outrider.core.tools import arguments_object, call_schema, offered

TOOL_PROMPT = (
    "You can call the tools below. To call one, answer with only a JSON object of the form "
    '{{"name": "<tool name>", "arguments": {{<its arguments>}}}}{choice}\n\nTools:\n{tools}'
)
AUTO_CHOICE = "; otherwise answer in plain text."
FORCED_CHOICE = " and nothing else: this answer must be a tool call."
# The start of a call as the constraint writes it (no free whitespace, ": " and ", " separators).
CALL_PREFIX = re.compile(r'^\{"name": "([A-Za-z0-9_-]*)", "arguments": ')


def uses_tools(prompt: list[ChatMessage] | str, params: GenerationParams) -> bool:
    return bool(params.tools) or (isinstance(prompt, list) and any(m.tool_calls or m.role == "tool" for m in prompt))


def template_takes_tools(tokenizer: Any) -> bool:
    return "tools" in (getattr(tokenizer, "chat_template", None) or "")


def tool_conversation(
    tokenizer: Any, messages: list[ChatMessage], params: GenerationParams
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """The chat as the template gets it, and the ``tools`` argument for templates that take one."""
    tools = offered(params.tools, params.tool_choice)
    if template_takes_tools(tokenizer):
        return [_template_message(m) for m in messages], [_template_tool(t) for t in tools] or None
    names = {call.id: call.name for m in messages for call in m.tool_calls}
    chat = [_plain_message(m, names) for m in messages]
    if tools:
        choice = AUTO_CHOICE if params.tool_choice.mode == "auto" else FORCED_CHOICE
        listing = "\n".join(
            f"- {t.name}: {t.description or 'no description'} Arguments: {json.dumps(t.parameters)}" for t in tools
        )
        prompt = TOOL_PROMPT.format(choice=choice, tools=listing)
        if chat and chat[0]["role"] == "system":
            chat[0] = {"role": "system", "content": chat[0]["content"] + "\n\n" + prompt}
        else:
            chat.insert(0, {"role": "system", "content": prompt})
    return chat, None


def _call_text(call: ToolCall) -> str:
    return json.dumps({"name": call.name, "arguments": arguments_object(call.arguments)}, ensure_ascii=False)


def _plain_message(message: ChatMessage, names: dict[str, str]) -> dict[str, Any]:
    if message.role == "tool":
        name = names.get(message.tool_call_id or "", "a tool")
        return {"role": "user", "content": f"Result of {name}: {message.content}"}
    if message.tool_calls:
        calls = "\n".join(_call_text(c) for c in message.tool_calls)
        return {"role": "assistant", "content": f"{message.content}\n{calls}" if message.content else calls}
    return {"role": message.role, "content": message.content}


def _template_message(message: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": arguments_object(c.arguments)},
            }
            for c in message.tool_calls
        ]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    return out


def _template_tool(tool: ToolDefinition) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
    }


def encode_tool_chat(tokenizer: Any, messages: list[ChatMessage], params: GenerationParams) -> list[int]:
    chat, tools = tool_conversation(tokenizer, messages, params)
    encoded = tokenizer.apply_chat_template(chat, tools=tools, add_generation_prompt=True, return_dict=True)
    return list(encoded["input_ids"])


class ToolDecision:
    """Whether the answer is a call: known from the start for a forced choice, after the first token for auto.
    Written on the engine thread before the first chunk is posted, read by the stream on the event loop."""

    def __init__(self, calling: bool | None) -> None:
        self.calling = calling


class AutoToolConstraint:
    """``auto``: the first token is left free; if the call grammar allows it, the rest is held to the call
    schema, otherwise the answer is text and nothing is constrained."""

    def __init__(self, call: Any, decision: ToolDecision) -> None:
        self._call, self._decision = call, decision
        self._first_allowed: Any = None

    def mask_logits(self, logits: Any) -> None:
        if self._decision.calling is None:
            probe = logits.clone()
            self._call.mask_logits(probe)
            self._first_allowed = probe.isfinite()
        elif self._decision.calling:
            self._call.mask_logits(logits)

    def advance(self, token_id: int) -> None:
        if self._decision.calling is None:
            self._decision.calling = bool(self._first_allowed[token_id])
        if self._decision.calling:
            self._call.advance(token_id)

    def is_done(self) -> bool:
        return bool(self._decision.calling) and self._call.is_done()


def tool_constraint(
    json_constraints: Callable[[dict], Callable[..., Any]], params: GenerationParams
) -> tuple[Callable[[], Any] | None, ToolDecision]:
    """The row's constraint factory for the request's tool choice, and the decision its stream reads."""
    tools = offered(params.tools, params.tool_choice)
    if not tools:
        return None, ToolDecision(False)
    if params.json_mode or params.json_schema is not None:
        raise InvalidTools("a local model takes either tools or a JSON response_format, not both", param="tools")
    try:
        new_call = json_constraints(call_schema(tools))
    except InvalidRequest as exc:  # its message speaks of response_format: say which tools it was
        raise InvalidTools(
            exc.message.replace("response_format schema", "a tool's parameter schema"), param="tools"
        ) from None
    if params.tool_choice.mode == "auto":
        decision = ToolDecision(None)
        return (lambda: AutoToolConstraint(new_call(max_tokens=params.max_tokens), decision)), decision
    return (lambda: new_call(max_tokens=params.max_tokens)), ToolDecision(True)


class ToolCallStream:
    """The engine's stream with a call's text turned into a tool call: its id and name once ``"arguments": `` is
    written, then the arguments as they come (holding back one character: the call object's closing brace)."""

    def __init__(self, inner: GenerationStream, decision: ToolDecision) -> None:
        self.inner, self.decision = inner, decision
        self.call_id = new_id("call")
        self._text = ""
        self._name: str | None = None
        self._sent = 0  # characters of the arguments already streamed
        self._start = 0  # where the arguments begin in the text

    @property
    def prompt_tokens(self) -> int:
        return int(getattr(self.inner, "prompt_tokens", 0) or 0)

    async def __aiter__(self) -> AsyncIterator[GenerationChunk]:
        async for chunk in self.inner:
            if not self.decision.calling:
                yield chunk
                continue
            self._text += chunk.text
            pieces = self._pieces(final=False)
            if pieces or chunk.logprobs:
                yield GenerationChunk("", chunk.logprobs, pieces)
        if self.decision.calling:
            pieces = self._pieces(final=True)
            if pieces:
                yield GenerationChunk("", (), pieces)
            elif self._name is None and self._text:  # cut off before naming a tool: what it wrote, as text
                yield GenerationChunk(self._text)

    def _pieces(self, final: bool) -> tuple[ToolCallDelta, ...]:
        pieces = []
        if self._name is None:
            match = CALL_PREFIX.match(self._text)
            if match is None:
                return ()
            self._name, self._start = match.group(1), match.end()
            pieces.append(ToolCallDelta(0, self.call_id, self._name))
        arguments = self._arguments(final)
        if len(arguments) > self._sent:
            pieces.append(ToolCallDelta(0, arguments=arguments[self._sent :]))
            self._sent = len(arguments)
        return tuple(pieces)

    def _arguments(self, final: bool) -> str:
        arguments = self._text[self._start :]
        if not final:
            return arguments[:-1]
        return arguments[:-1] if self._complete() else arguments

    def _complete(self) -> bool:
        try:
            json.loads(self._text)
        except ValueError:
            return False
        return True

    def _converted(self, result: GenerationResult) -> GenerationResult:
        if not self.decision.calling or self._name is None:
            return result
        arguments = self._text[self._start :]
        call = ToolCall(self.call_id, self._name, arguments[:-1] if self._complete() else arguments)
        reason = "tool_calls" if result.finish_reason == "stop" else result.finish_reason
        return GenerationResult(
            text="",
            finish_reason=reason,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            logprobs=result.logprobs,
            extra=result.extra,
            tool_calls=(call,),
        )

    @property
    def result(self) -> GenerationResult:
        return self._converted(self.inner.result)

    async def wait_result(self) -> GenerationResult:
        result = await self.inner.wait_result()
        if self.decision.calling and self._name is None:
            self._text = result.text
            self._pieces(final=True)
        return self._converted(result)

    def cancel(self) -> None:
        self.inner.cancel()
