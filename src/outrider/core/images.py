"""Image content parts: every surface's image forms become one neutral ``ImagePart``, checked here.

Accepted: ``http(s)://`` URLs (passed on to the upstream as they are; Outrider never fetches them) and inline
base64 images, as ``data:<media type>;base64,<data>`` URLs (OpenAI's forms) or a media type and data (Anthropic's
``source``). Inline images must be PNG, JPEG, GIF or WebP (what both OpenAI and Anthropic accept), valid base64,
and their bytes must be of the declared type. Any other image is an ``InvalidImage`` (400) naming the part.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from outrider.core.errors import InvalidImage
from outrider.core.messages import ChatMessage, ContentPart, ImagePart, Role, TextPart

MEDIA_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
DETAILS = ("auto", "low", "high")


def _is_type(media_type: str, head: bytes) -> bool:
    """Whether the decoded bytes start like an image of ``media_type`` (its file signature)."""
    if media_type == "image/png":
        return head.startswith(b"\x89PNG\r\n\x1a\n")
    if media_type == "image/jpeg":
        return head.startswith(b"\xff\xd8\xff")
    if media_type == "image/gif":
        return head.startswith((b"GIF87a", b"GIF89a"))
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def image_from_base64(media_type: str, data: str, where: str, detail: str | None = None) -> ImagePart:
    """An inline image; ``where`` names the part in errors (e.g. ``messages[0].content[1]``)."""
    if media_type not in MEDIA_TYPES:
        raise InvalidImage(
            f"{where}: unsupported image media type '{media_type}'; use one of {', '.join(MEDIA_TYPES)}", param=where
        )
    try:
        decoded = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidImage(f"{where}: the image data is not valid base64 ({exc})", param=where) from exc
    if not decoded:
        raise InvalidImage(f"{where}: the image data is empty", param=where)
    if not _is_type(media_type, decoded[:12]):
        raise InvalidImage(f"{where}: the image data does not match its media type {media_type}", param=where)
    return ImagePart(media_type=media_type, data=data, byte_size=len(decoded), detail=_detail(detail, where))


def image_from_url(url: str, where: str, detail: str | None = None) -> ImagePart:
    """An image given as a URL: ``https://...`` / ``http://...``, or a ``data:`` URL holding base64."""
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not comma or encoding != "base64":
            raise InvalidImage(f"{where}: a data URL must look like data:image/png;base64,<data>", param=where)
        return image_from_base64(media_type, data, where, detail)
    if not url.startswith(("https://", "http://")) or len(url) <= len("https://"):
        raise InvalidImage(f"{where}: an image URL must be http(s):// or a base64 data: URL", param=where)
    return ImagePart(url=url, detail=_detail(detail, where))


def _detail(detail: str | None, where: str) -> str | None:
    if detail is not None and detail not in DETAILS:
        raise InvalidImage(f"{where}: detail must be one of {', '.join(DETAILS)}", param=where)
    return detail


def message_of(role: Role, parts: Sequence[ContentPart]) -> ChatMessage:
    """A message from its parts in order: ``content`` is the text; ``parts`` are kept when there is an image."""
    text = "".join(p.text for p in parts if isinstance(p, TextPart))
    with_images = any(isinstance(p, ImagePart) for p in parts)
    return ChatMessage(role=role, content=text, parts=tuple(parts) if with_images else ())


def check_images(messages: Sequence[ChatMessage], max_images: int, max_bytes: int) -> None:
    """Images only in user messages; at most ``max_images`` in a request, each at most ``max_bytes`` decoded."""
    for index, message in enumerate(messages):
        if message.images and message.role != "user":
            where = f"messages[{index}]"
            raise InvalidImage(f"{where}: images are accepted in user messages only", param=where)
    images = [(i, image) for i, m in enumerate(messages) for image in m.images]
    if len(images) > max_images:
        raise InvalidImage(f"a request takes at most {max_images} images; this one has {len(images)}", param="messages")
    for index, image in images:
        if image.byte_size > max_bytes:
            raise InvalidImage(
                f"messages[{index}]: an image of {image.byte_size} bytes is over the limit of {max_bytes} bytes",
                param=f"messages[{index}]",
            )
