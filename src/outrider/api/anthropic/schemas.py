"""Anthropic Messages wire types (requests). Unknown fields are ignored; known ones are validated."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from outrider.api.bodies import CheckedBody


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ImageSource(_Lenient):
    """An ``image`` block's source: ``{"type": "base64", "media_type", "data"}`` or ``{"type": "url", "url"}``."""

    type: str
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class ContentBlock(_Lenient):
    type: str
    text: str | None = None
    source: ImageSource | None = None  # image blocks


class MessageIn(_Lenient):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]


class RoutingIn(_Lenient):
    """Outrider extension for ``model: "auto"``: override the key's routing pool and mode, or the task."""

    model_pool: list[str] | None = None
    optimize: str | None = None
    task: str | None = None


class MessagesRequest(_Lenient, CheckedBody):
    model: str = Field(min_length=1)
    routing: RoutingIn | None = None
    max_tokens: int = Field(ge=1)
    messages: list[MessageIn]
    system: str | list[ContentBlock] | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(None, ge=0.0, le=1.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=1)
    stream: bool = False
    metadata: dict[str, Any] | None = None
    # Read to know what the model must support (``model: "auto"`` only picks tool-capable models for them).
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")  # Outrider extension: schema extraction
