"""Request telemetry, one pure ASGI middleware (outermost of the app's own): the request id, the HTTP
metrics and the optional access log.

The request id (``observability/request_ids.py``) is set before anything else runs, so every log record of
the request carries it, and is added to the response's headers whatever the response is (JSON, an error
envelope, a 413 from the size limit, a stream). The one response that does not pass through here, the
plain 500 that Starlette's outermost error middleware sends for an unhandled exception, gets it from
``api/errors.py``, which reads it from ``request.state.request_id``.

Requests are counted by route template (``/jobs/{job_id}``, never the raw path), method and status once the
response has ended; a request no route matched (an unknown path, a body the size limit refused before
routing) is counted as ``unmatched``.
"""

from __future__ import annotations

import logging
import time

from outrider.observability.request_ids import HEADER, accept_request_id, current_request_id

UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_HEADER_KEY = HEADER.lower().encode()

access_log = logging.getLogger("outrider.access")


def route_template(scope: dict) -> str:
    route = scope.get("route")
    return getattr(route, "path_format", None) or getattr(route, "path", None) or UNMATCHED


class RequestTelemetry:
    def __init__(self, app, *, access_log_enabled: bool = False) -> None:
        self.app = app
        self.access_log_enabled = access_log_enabled

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        raw = next((value for name, value in scope.get("headers") or () if name == _HEADER_KEY), None)
        request_id = accept_request_id(raw)
        current_request_id.set(request_id)  # each request runs in a task (a context) of its own
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (_HEADER_KEY, request_id.encode())
        status = 500  # unless a response starts: an unhandled exception becomes Starlette's plain 500

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != _HEADER_KEY]
                message["headers"] = [*headers, id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: dict, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        route = route_template(scope)
        services = getattr(scope["app"].state, "services", None) if "app" in scope else None
        if services is not None:
            services.metrics.observe_request(route, method, status, seconds)
        if self.access_log_enabled:
            duration_ms = round(seconds * 1000, 3)
            access_log.info(
                "%s %s %d %.1f ms",
                method,
                scope["path"],
                status,
                duration_ms,
                extra={
                    "method": method,
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": duration_ms,
                },
            )
