"""Pure ASGI middlewares: the request size limit (413 before parsing) and headers left by the request's
dependencies (rate limits, session cookies)."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException

from outrider.api.errors import envelope, surface_of


class BodySizeLimit:
    def __init__(self, app, max_bytes: int, path_limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Paths (and everything under them) with a limit of their own, e.g. dataset uploads.
        self.path_limits = path_limits or {}

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.path_limits.items():
            if path == prefix or path.startswith(prefix + "/"):
                return limit
        return self.max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        max_bytes = self.limit_for(scope["path"])
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._reject(scope, send, max_bytes)
            return
        received = 0

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise _TooLarge(max_bytes)
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLarge:
            await self._reject(scope, send, max_bytes)

    async def _reject(self, scope, send, max_bytes: int) -> None:
        message = _too_large_message(max_bytes)
        body = json.dumps(envelope(surface_of(scope["path"]), 413, message, code="payload_too_large", param=None))
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body.encode()})


def _too_large_message(max_bytes: int) -> str:
    return f"request body larger than {max_bytes} bytes"


class _TooLarge(HTTPException):
    """A body (without Content-Length, e.g. chunked) that grew past the limit while being read. An
    HTTPException because FastAPI turns any other error raised while it reads a body into a 400: this one
    reaches the app's handler and becomes the 413, in the surface's envelope."""

    code = "payload_too_large"

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, _too_large_message(max_bytes))


class ResponseHeaders:
    """Adds the headers a request left in ``request.state`` to its response, whatever kind of response the
    route returned (JSON, a stream, an error): the X-RateLimit-* headers of a rate-limited route
    (``rate_limit_headers``) and the Set-Cookie headers of a session signed in, renewed or ended
    (``set_cookies``)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state") or {}
                extra = state.get("rate_limit_headers")
                cookies = state.get("set_cookies")
                if cookies:
                    message["headers"] = list(message.get("headers", [])) + list(cookies)
                if extra:
                    present = {name.lower() for name, _ in message.get("headers", [])}
                    message["headers"] = list(message.get("headers", [])) + [
                        (k.lower().encode(), v.encode()) for k, v in extra.items() if k.lower().encode() not in present
                    ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
