"""OpenAI wire types (requests). Responses are built as plain dicts in ``conversion.py``.

Unknown fields are ignored, as SDKs send many optional ones; known fields are validated and a bad value
is a 422 in OpenAI's error envelope naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from outrider.api.bodies import CheckedBody


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class TextPart(_Lenient):
    type: Literal["text", "input_text", "output_text"]
    text: str


class ImageUrl(_Lenient):
    url: str
    detail: str | None = None


class ImageUrlPart(_Lenient):
    """Chat Completions' image: ``{"type": "image_url", "image_url": {"url": "https://... or data:...", "detail"}}``."""

    type: Literal["image_url"]
    image_url: ImageUrl


class InputImagePart(_Lenient):
    """The Responses API's image: ``{"type": "input_image", "image_url": "https://... or data:...", "detail"}``."""

    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None  # uploaded files are not kept here: refused with a message saying so
    detail: str | None = None


ChatPart = Annotated[TextPart | ImageUrlPart, Field(discriminator="type")]
ResponsesPart = Annotated[TextPart | InputImagePart, Field(discriminator="type")]


class ChatMessageIn(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ChatPart] | None = None


class JsonSchemaSpec(_Lenient):
    name: str = "response"
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Lenient):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None


class StreamOptions(_Lenient):
    include_usage: bool = False


class RoutingIn(_Lenient):
    """Outrider extension for ``model: "auto"``: override the key's routing pool and mode, or the task."""

    model_pool: list[str] | None = None
    optimize: str | None = None
    task: str | None = None


class _Sampling(_Lenient):
    model: str = Field(min_length=1)
    routing: RoutingIn | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stream: bool = False
    stream_options: StreamOptions | None = None
    # A signed 64-bit integer: what the decoder's generator and upstream APIs accept (larger: 422, not a 500).
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=8)


class ChatCompletionRequest(_Sampling, CheckedBody):
    messages: list[ChatMessageIn]
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    # Read to know what the model must support (``model: "auto"`` only picks tool-capable models for them).
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")  # Outrider extension: schema extraction


class CompletionRequest(_Sampling, CheckedBody):
    prompt: str | list[str]
    max_tokens: int | None = Field(None, ge=1)
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool = False


class ResponseTextFormat(_Lenient):
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseText(_Lenient):
    format: ResponseTextFormat | None = None


class ResponseInputMessage(_Lenient):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ResponsesPart]
    type: Literal["message"] | None = None


class ResponsesRequest(_Lenient, CheckedBody):
    model: str = Field(min_length=1)
    routing: RoutingIn | None = None
    input: str | list[ResponseInputMessage]
    instructions: str | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stream: bool = False
    text: ResponseText | None = None
    tools: list[dict[str, Any]] | None = None  # read as on chat completions
    tool_choice: str | dict[str, Any] | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")


class EmbeddingsRequest(_Lenient, CheckedBody):
    model: str = Field(min_length=1)
    # Token-id arrays parse (so that the refusal can say what to send instead) and are refused in conversion.
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None
    store: bool = True  # Outrider extension: false keeps no history record (usage is recorded all the same)

    @field_validator("input", mode="before")
    @classmethod
    def _one_shape(cls, value: Any) -> Any:
        """One clear message for a wrong shape, instead of one per member of the union."""
        if isinstance(value, str) or (isinstance(value, list) and _all_strings_or_token_ids(value)):
            return value
        raise ValueError("input must be a string or a list of strings")


def _all_strings_or_token_ids(values: list[Any]) -> bool:
    def token_ids(item: Any) -> bool:
        return isinstance(item, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in item)

    return all(isinstance(v, str) for v in values) or token_ids(values) or all(token_ids(v) for v in values)
