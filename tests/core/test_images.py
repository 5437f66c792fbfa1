"""Image parts: every accepted form becomes one ``ImagePart``; every unusable one is a 400 naming the part."""

from __future__ import annotations

import base64

import pytest

from outrider.core.capabilities import TOOLS, VISION, required_capabilities, tools_requested
from outrider.core.errors import InvalidImage
from outrider.core.images import check_images, image_from_base64, image_from_url, message_of
from outrider.core.messages import ChatMessage, ImagePart, TextPart

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
SIGNATURES = {
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff\xe0",
    "image/gif": b"GIF89a",
    "image/webp": b"RIFF\x10\x00\x00\x00WEBPVP8 ",
}


def encoded(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize("media_type", sorted(SIGNATURES))
def test_each_supported_type_is_recognised_by_its_bytes(media_type):
    data = encoded(SIGNATURES[media_type] + b"\x00" * 20)
    image = image_from_base64(media_type, data, "m")
    assert (image.media_type, image.data, image.url) == (media_type, data, None)
    assert image.byte_size == len(SIGNATURES[media_type]) + 20
    assert image.data_url == f"data:{media_type};base64,{data}"


def test_a_data_url_and_a_web_url():
    inline = image_from_url(f"data:image/png;base64,{PNG}", "m", "low")
    assert (inline.media_type, inline.data, inline.detail) == ("image/png", PNG, "low")
    assert inline.byte_size == len(base64.b64decode(PNG))
    linked = image_from_url("https://example.com/cat.png", "m")
    assert (linked.url, linked.data, linked.data_url) == ("https://example.com/cat.png", None, linked.url)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: image_from_base64("image/bmp", PNG, "p"), "unsupported image media type 'image/bmp'"),
        (lambda: image_from_base64("image/png", "not base64!", "p"), "not valid base64"),
        (lambda: image_from_base64("image/png", "", "p"), "empty"),
        (lambda: image_from_base64("image/jpeg", PNG, "p"), "does not match its media type image/jpeg"),
        (lambda: image_from_url("data:image/png," + PNG, "p"), "data:image/png;base64,<data>"),
        (lambda: image_from_url("ftp://example.com/a.png", "p"), "http(s)://"),
        (lambda: image_from_url("https://example.com/a.png", "p", "ultra"), "detail must be one of"),
    ],
)
def test_unusable_images_are_400_naming_the_part(make, message):
    with pytest.raises(InvalidImage, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        make()
    assert caught.value.status_code == 400 and caught.value.param == "p"


def test_a_message_keeps_its_parts_in_order_only_when_it_has_an_image():
    image = image_from_url("https://example.com/a.png", "m")
    message = message_of("user", [TextPart("look "), image, TextPart("here")])
    assert message.content == "look here" and message.parts == (TextPart("look "), image, TextPart("here"))
    assert message.images == (image,)
    assert message_of("user", [TextPart("a"), TextPart("b")]) == ChatMessage("user", "ab")


def test_limits_on_count_size_and_role():
    small = ImagePart(media_type="image/png", data=PNG, byte_size=70)
    big = ImagePart(media_type="image/png", data=PNG, byte_size=7000)
    with_images = [ChatMessage("user", "", (small, small))]
    check_images(with_images, max_images=2, max_bytes=100)
    with pytest.raises(InvalidImage, match="at most 1 images; this one has 2"):
        check_images(with_images, max_images=1, max_bytes=100)
    with pytest.raises(InvalidImage, match=r"messages\[0\]: an image of 7000 bytes is over the limit of 100"):
        check_images([ChatMessage("user", "", (big,))], max_images=2, max_bytes=100)
    with pytest.raises(InvalidImage, match="user messages only"):
        check_images([ChatMessage("assistant", "", (small,)), ChatMessage("user", "hi")], 2, 100)


def test_required_capabilities():
    image = ImagePart(url="https://example.com/a.png")
    assert required_capabilities([ChatMessage("user", "hi")]) == frozenset()
    assert required_capabilities([ChatMessage("user", "", (image,))]) == {VISION}
    assert required_capabilities(None, tools=True) == {TOOLS}
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert tools_requested(tools, None) and tools_requested(tools, "auto") and tools_requested(tools, {"type": "any"})
    assert not tools_requested(tools, "none") and not tools_requested(tools, {"type": "none"})
    assert not tools_requested([], "auto") and not tools_requested(None, None)
