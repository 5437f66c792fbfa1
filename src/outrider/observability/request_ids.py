"""Request ids: one per HTTP request, taken from a sane incoming ``X-Request-ID`` or generated.

The id of the request being served is in a context variable, so every log record written while serving
it carries it (``observability/logs.py``), also from threads started with ``asyncio.to_thread``.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

HEADER = "X-Request-ID"
MAX_LENGTH = 128
# Letters, digits and the punctuation of UUIDs, ULIDs, base64 and tracing ids; nothing that could split a
# log line or a header (spaces, quotes, control characters).
_SANE = re.compile(rf"[A-Za-z0-9._:/+=@-]{{1,{MAX_LENGTH}}}")

current_request_id: ContextVar[str | None] = ContextVar("outrider_request_id", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(raw: bytes | None) -> str:
    """The client's id when it is 1-128 characters of ``A-Z a-z 0-9 . _ : / + = @ -``, else a new one."""
    if raw:
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            return new_request_id()
        if _SANE.fullmatch(text):
            return text
    return new_request_id()
