"""Read a dataset upload: the raw body (parameters in the query string) or ``multipart/form-data`` (a file
part plus form fields, as ``curl -F file=@data.jsonl -F name=...`` sends).

The multipart reader is a few lines of stdlib code instead of a dependency (python-multipart): uploads
are one file and a few short fields, and the file part's bytes must come back exactly as sent.
"""

from __future__ import annotations

import re

from fastapi import Request

from outrider.core.errors import InvalidRequest

_PARAM = re.compile(r'(\w+)="?([^";]*)"?')


async def read_upload(request: Request) -> tuple[bytes, dict[str, str]]:
    """``(file bytes, form fields)``; a raw body has no form fields (its options are query parameters)."""
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        return parse_multipart(body, content_type)
    return body, {}


def parse_multipart(body: bytes, content_type: str) -> tuple[bytes, dict[str, str]]:
    params = dict(_PARAM.findall(content_type))
    boundary = params.get("boundary")
    if not boundary:
        raise InvalidRequest("multipart upload without a boundary", param="file")
    delimiter = b"--" + boundary.encode()
    data: bytes | None = None
    form: dict[str, str] = {}
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break  # the closing delimiter
        part = part.removeprefix(b"\r\n")
        head, separator, content = part.partition(b"\r\n\r\n")
        if not separator:
            raise InvalidRequest("malformed multipart part", param="file")
        content = content.removesuffix(b"\r\n")
        disposition = next(
            (line for line in head.decode("latin-1").split("\r\n") if line.lower().startswith("content-disposition")),
            "",
        )
        attributes = dict(_PARAM.findall(disposition))
        name = attributes.get("name", "")
        if "filename" in attributes or name == "file":
            data = content
        elif name:
            form[name] = content.decode("utf-8", errors="replace")
    if data is None:
        raise InvalidRequest("the multipart upload has no file part (send it as 'file')", param="file")
    return data, form
