"""Neutral image parts in each upstream format: OpenAI ``image_url`` parts, Anthropic ``image`` blocks."""

from __future__ import annotations

from outrider.backends.upstream_anthropic import messages_body
from outrider.backends.upstream_openai import chat_body
from outrider.core.messages import ChatMessage, GenerationParams, ImagePart, TextPart

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
INLINE = ImagePart(media_type="image/png", data=PNG, byte_size=70, detail="high")
LINKED = ImagePart(url="https://example.com/cat.jpg")
ASK = ChatMessage(
    "user", "What is this? And this?", (TextPart("What is this?"), INLINE, TextPart(" And this?"), LINKED)
)


def test_openai_format_keeps_the_parts_in_order():
    body = chat_body("m", [ChatMessage("system", "Be brief."), ASK], GenerationParams())
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"}},
        {"type": "text", "text": " And this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]


def test_anthropic_format_uses_base64_and_url_sources():
    body = messages_body("m", [ChatMessage("system", "Be brief."), ASK], GenerationParams())
    assert body["system"] == "Be brief."
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "text", "text": " And this?"},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ],
        }
    ]


def test_anthropic_merges_a_text_turn_with_an_image_turn_as_blocks():
    body = messages_body("m", [ChatMessage("user", "First."), ASK], GenerationParams())
    (turn,) = body["messages"]
    assert turn["content"][0] == {"type": "text", "text": "First."} and turn["content"][1:] == ask_blocks()
    text_only = messages_body("m", [ChatMessage("user", "a"), ChatMessage("user", "b")], GenerationParams())
    assert text_only["messages"] == [{"role": "user", "content": "a\n\nb"}]


def ask_blocks() -> list[dict]:
    return messages_body("m", [ASK], GenerationParams())["messages"][0]["content"]
