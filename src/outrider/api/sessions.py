"""Session cookies on the HTTP side: reading a signed-in browser's cookie, the CSRF and same-origin checks of
its writes, and the Set-Cookie headers of sign-in, renewal and sign-out.

Two cookies: ``outrider_session`` (the token: HttpOnly, SameSite=Lax) and ``outrider_csrf`` (readable by the
page's scripts, which echo it in an ``X-CSRF-Token`` header). A cookie-signed request that changes something
(any method but GET, HEAD and OPTIONS) must carry that header equal to the cookie and to the digest signed
into the token (double submit, bound to the session), and an ``Origin`` (or, without one, a ``Referer``) of
the server itself or of ``OUTRIDER_SESSION_TRUSTED_ORIGINS``. API keys need neither: a browser never sends
one by itself.
"""

from __future__ import annotations

import asyncio
import hmac
from urllib.parse import urlsplit

from fastapi import Request
from starlette.responses import Response

from outrider.app_state import Services
from outrider.config import Settings
from outrider.core.errors import CsrfRefused, SessionInvalid
from outrider.services.accounts import Principal
from outrider.services.sessions import SessionToken, csrf_digest

SESSION_COOKIE = "outrider_session"
CSRF_COOKIE = "outrider_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def session_principal(request: Request, svc: Services, token: str) -> Principal:
    """The principal of the session cookie ``token``; checks CSRF and origin on writes and queues a renewed
    cookie when the token was past half its life. A refused token also clears the cookies."""
    try:
        session = await asyncio.to_thread(svc.sessions.authenticate, token, request.cookies.get(CSRF_COOKIE))
    except SessionInvalid:
        queue_cookies(request, clearing_cookies(secure_cookies(request, svc.settings)))
        raise
    if request.method not in SAFE_METHODS:
        check_same_origin(request, svc.settings)
        check_csrf_token(request, session.csrf_digest)
    request.state.session_expires_at = session.expires_at
    if session.renewed is not None:
        request.state.session_expires_at = session.renewed.expires_at
        queue_cookies(request, session_cookies(session.renewed, secure_cookies(request, svc.settings)))
    return session.principal


def check_csrf_token(request: Request, signed_digest: str) -> None:
    header = request.headers.get(CSRF_HEADER) or ""
    cookie = request.cookies.get(CSRF_COOKIE) or ""
    matches = (
        bool(header)
        and hmac.compare_digest(header.encode(), cookie.encode())
        and hmac.compare_digest(csrf_digest(header), signed_digest)
    )
    if not matches:
        raise CsrfRefused(
            f"a request signed by the session cookie that changes something needs the '{CSRF_COOKIE}' cookie's "
            "value in an X-CSRF-Token header"
        )


def check_same_origin(request: Request, settings: Settings) -> None:
    """Refuse a write whose Origin (or Referer) is another site, or that names neither (403)."""
    source = request.headers.get("origin")
    if source is None or source == "null":
        referer = request.headers.get("referer")
        source = _origin_of(referer) if referer else None
    if not source:
        raise CsrfRefused("a request signed by the session cookie that changes something needs an Origin header")
    if not is_same_origin(source, request, settings):
        raise CsrfRefused(f"cross-site request refused: origin '{source[:200]}' is not this server's")


def check_login_origin(request: Request, settings: Settings) -> None:
    """Sign-in from another site's page is refused when the browser says so (no Origin: a script, allowed)."""
    source = request.headers.get("origin") or _origin_of(request.headers.get("referer") or "")
    if source and not is_same_origin(source, request, settings):
        raise CsrfRefused(f"cross-site sign-in refused: origin '{source[:200]}' is not this server's")


def is_same_origin(source: str, request: Request, settings: Settings) -> bool:
    origin = _origin_of(source)
    if origin is None:
        return False
    trusted = {o.rstrip("/").lower() for o in settings.session_trusted_origins}
    if origin in trusted:
        return True
    # The host the browser addressed; the scheme may differ behind a proxy that terminates TLS.
    host = (request.headers.get("host") or "").lower()
    return bool(host) and urlsplit(origin).netloc == host


def _origin_of(url: str) -> str | None:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def secure_cookies(request: Request, settings: Settings) -> bool:
    if settings.session_cookie_secure == "auto":
        return request.url.scheme == "https"
    return settings.session_cookie_secure == "always"


def session_cookies(token: SessionToken, secure: bool) -> list[tuple[bytes, bytes]]:
    """The Set-Cookie headers of a session: the HttpOnly token and the script-readable CSRF token."""
    response = Response()
    common = {"max_age": token.max_age_s, "path": "/", "secure": secure, "samesite": "lax"}
    response.set_cookie(SESSION_COOKIE, token.token, httponly=True, **common)
    response.set_cookie(CSRF_COOKIE, token.csrf_token, httponly=False, **common)
    return [(name, value) for name, value in response.raw_headers if name == b"set-cookie"]


def clearing_cookies(secure: bool) -> list[tuple[bytes, bytes]]:
    response = Response()
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", secure=secure, httponly=name == SESSION_COOKIE, samesite="lax")
    return [(name, value) for name, value in response.raw_headers if name == b"set-cookie"]


def queue_cookies(request: Request, headers: list[tuple[bytes, bytes]]) -> None:
    """Set-Cookie headers added to whatever response this request gets (ResponseHeaders middleware)."""
    request.state.set_cookies = headers
