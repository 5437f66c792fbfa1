"""Outrider's domain errors: one hierarchy, mapped to each API surface's envelope in one place.

    OutriderError                 base; never raised directly
    +-- InvalidRequest            the request is well-formed JSON but asks for something invalid (422)
    |   +-- InvalidSchema         an extraction schema that cannot be built
    |   +-- InvalidImage          an image part that is not a usable image: bad base64, media type, size (400)
    |   +-- CapabilityMissing     the model lacks a capability the request needs, e.g. vision for images (400)
    +-- AuthenticationFailed      no key, an unknown key, an expired key, a wrong password (401)
    |   +-- SessionInvalid        a session cookie tampered with, expired or signed out
    +-- PermissionDenied          a revoked key, a model outside the key's pool, an admin-only action, a role (403)
    |   +-- CsrfRefused           a cookie-signed write without the CSRF header or from another site
    +-- NotFound                  an unknown record (404)
    |   +-- ModelNotFound         an unknown model id
    +-- Conflict                  the request conflicts with the current state (409)
    +-- PayloadTooLarge           a body over the configured limit (413)
    +-- InsufficientCredits       the balance cannot cover the call (402)
    +-- RateLimited               too many requests; carries ``retry_after`` seconds (429)
    +-- ModelUnavailable          the model exists but cannot be loaded here, e.g. an offline hub (503)
    +-- BackendError              the model backend or an upstream failed while serving (502)
    |   +-- UpstreamError         an upstream provider: 5xx, timeout, refused connection, rejected key, open circuit
    +-- ClientDisconnected        the client went away before its response was ready (499; nobody reads it)

Services and backends raise these; only ``api/errors.py`` turns them into HTTP responses and stream error events.
Each class carries its HTTP status and a stable machine-readable ``code``.
"""

from __future__ import annotations


class OutriderError(Exception):
    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidRequest(OutriderError):
    status_code = 422
    code = "invalid_request"


class InvalidSchema(InvalidRequest):
    code = "invalid_schema"


class InvalidImage(InvalidRequest):
    """400, as OpenAI and Anthropic answer an image they cannot read."""

    status_code = 400
    code = "invalid_image"


class CapabilityMissing(InvalidRequest):
    """400: the request is fine, but the model named (or every model ``auto`` may choose) cannot serve it."""

    status_code = 400
    code = "model_capability_missing"


class AuthenticationFailed(OutriderError):
    status_code = 401
    code = "invalid_api_key"


class SessionInvalid(AuthenticationFailed):
    code = "invalid_session"


class PermissionDenied(OutriderError):
    status_code = 403
    code = "permission_denied"


class CsrfRefused(PermissionDenied):
    code = "csrf_failed"


class NotFound(OutriderError):
    status_code = 404
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class Conflict(OutriderError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(OutriderError):
    status_code = 413
    code = "payload_too_large"


class InsufficientCredits(OutriderError):
    status_code = 402
    code = "insufficient_credits"


class RateLimited(OutriderError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int = 1, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = headers or {}


class ModelUnavailable(OutriderError):
    status_code = 503
    code = "model_unavailable"


class BackendError(OutriderError):
    status_code = 502
    code = "backend_error"


class UpstreamError(BackendError):
    """An upstream provider failed. ``code`` says how: ``upstream_error`` (5xx or a broken stream),
    ``upstream_timeout``, ``upstream_unreachable``, ``upstream_auth_error`` (it refused our key),
    ``upstream_unavailable`` (its circuit breaker is open)."""

    code = "upstream_error"

    def __init__(self, message: str, *, code: str = "upstream_error") -> None:
        super().__init__(message)
        self.code = code


class ClientDisconnected(OutriderError):
    """The client closed the connection while its call ran; the call was stopped and recorded ``cancelled``.
    499 is nginx's "client closed request": the answer is never read, but it keeps access logs truthful."""

    status_code = 499
    code = "client_closed_request"
