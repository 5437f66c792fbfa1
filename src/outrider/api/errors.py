"""Domain errors -> HTTP responses, in one place, in each surface's own envelope.

native:    {"detail": "..."}
openai:    {"error": {"message", "type", "param", "code"}}      (paths under /v1 except /v1/messages)
anthropic: {"type": "error", "error": {"type", "message"}}      (/v1/messages)

The same mapping frames errors raised mid-stream (``stream_error``, ``responses_stream_error``).

Stack traces never reach a client: unexpected exceptions are logged and answered with a plain 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from outrider.core.errors import OutriderError, RateLimited
from outrider.observability.request_ids import HEADER as REQUEST_ID_HEADER

log = logging.getLogger(__name__)

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    502: "api_error",
    503: "api_error",
    500: "api_error",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    502: "api_error",
    503: "overloaded_error",
    500: "api_error",
}


def surface_of(path: str) -> str:
    if path.startswith("/v1/messages"):
        return "anthropic"
    if path.startswith("/v1/"):
        return "openai"
    return "native"


def envelope(surface: str, status: int, message: str, *, code: str | None, param: str | None) -> dict[str, Any]:
    if surface == "openai":
        return {
            "error": {"message": message, "type": _OPENAI_TYPES.get(status, "api_error"), "param": param, "code": code}
        }
    if surface == "anthropic":
        return {"type": "error", "error": {"type": _ANTHROPIC_TYPES.get(status, "api_error"), "message": message}}
    return {"detail": message}


def stream_error(surface: str, exc: OutriderError) -> dict[str, Any]:
    """A domain error raised after a stream's 200 went out: the surface's envelope, sent as the stream's last
    event (``data:`` on OpenAI's chunk streams, ``event: error`` on Anthropic's)."""
    return envelope(surface, exc.status_code, exc.message, code=exc.code, param=exc.param)


def responses_stream_error(exc: OutriderError) -> dict[str, Any]:
    """The fields of the ``error`` event that ends a Responses API stream. OpenAI puts them at the event's top
    level (``{"type": "error", "sequence_number", "code", "message", "param"}``), not in an envelope; the stream
    adds ``type`` and ``sequence_number``."""
    return {"code": exc.code, "message": exc.message, "param": exc.param}


def error_response(
    request: Request,
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = envelope(surface_of(request.url.path), status, message, code=code, param=param)
    return JSONResponse(body, status_code=status, headers=headers)


def validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    parts, first_param = [], None
    for err in exc.errors():
        if err.get("type") == "json_invalid":  # its loc is a character position, not a field
            parts.append(_json_invalid_message(err))
            continue
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc)
        first_param = first_param or (field or None)
        parts.append(f"{field}: {err.get('msg')}" if field else str(err.get("msg")))
    return "; ".join(parts) or "invalid request", first_param


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OutriderError)
    async def _domain(request: Request, exc: OutriderError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after), **exc.headers} if isinstance(exc, RateLimited) else None
        return error_response(request, exc.status_code, exc.message, code=exc.code, param=exc.param, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if surface_of(request.url.path) == "native":
            # Native clients get FastAPI's structured list, which names every failing field.
            return JSONResponse({"detail": _jsonable_errors(exc)}, status_code=422)
        message, param = validation_message(exc)
        return error_response(request, 422, message, code="invalid_request", param=param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        unreadable = _unreadable_body(exc)
        if unreadable is not None:
            return _invalid_body(request, unreadable)
        code = getattr(exc, "code", None)  # e.g. BodySizeLimit's 413, raised while the body is read
        return error_response(request, exc.status_code, str(exc.detail), code=code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        # Starlette sends this response outside every middleware: the request id is added here.
        request_id = getattr(request.state, "request_id", None)
        headers = {REQUEST_ID_HEADER: request_id} if request_id else None
        return error_response(request, 500, "internal server error", code="internal_error", headers=headers)


def _json_invalid_message(err: dict[str, Any]) -> str:
    loc = [p for p in err.get("loc", ()) if p != "body"]
    where = f" at character {loc[0]}" if loc else ""
    return f"the body is not valid JSON: {(err.get('ctx') or {}).get('error', 'decode error')}{where}"


# FastAPI answers a body ``json.loads`` fails on with anything but a JSONDecodeError (bytes that are not UTF-8,
# nesting past Python's recursion limit) as a bare 400. It is the same client error as malformed JSON (422).
_PARSE_FAILURE = "There was an error parsing the body"


def _unreadable_body(exc: StarletteHTTPException) -> str | None:
    if exc.status_code != 400 or exc.detail != _PARSE_FAILURE:
        return None
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return f"the body is not valid UTF-8 (byte {cause.start})"
    if isinstance(cause, RecursionError):
        return "the body is not valid JSON: nested too deeply"
    return "the body is not valid JSON"


def _invalid_body(request: Request, message: str) -> JSONResponse:
    if surface_of(request.url.path) == "native":
        return JSONResponse({"detail": [{"loc": ["body"], "msg": message, "type": "json_invalid"}]}, status_code=422)
    return error_response(request, 422, message, code="invalid_request", param=None)


def _jsonable_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        item = {"loc": list(err.get("loc", ())), "msg": str(err.get("msg")), "type": err.get("type")}
        out.append(item)
    return out
