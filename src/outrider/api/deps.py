"""Request dependencies: the service container and the authenticated principal.

Every surface authenticates through ``principal``: an API key (``X-API-Key`` or ``Authorization: Bearer``)
or, without one, a signed-in session's cookie (api/sessions.py: CSRF and origin checks on writes). A viewer
(read-only role) is refused any request that changes something (every method but GET, HEAD, OPTIONS), in
the surface's envelope; admin actions need an admin account's owner.

Routes take them through the ``Annotated`` aliases defined here (``who: CurrentPrincipal, svc: ServicesDep``)
rather than repeating ``Depends(...)`` defaults in every signature."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from outrider.api.sessions import SAFE_METHODS, SESSION_COOKIE, session_principal
from outrider.app_state import Services
from outrider.core.errors import PermissionDenied
from outrider.services.accounts import Principal


async def services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(services)]


def raw_key_from(request: Request) -> str | None:
    """``X-API-Key`` / ``x-api-key`` (Anthropic SDKs) or ``Authorization: Bearer``."""
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def authenticated(request: Request, svc: ServicesDep) -> Principal:
    """The caller, whatever its role: a key, else the session cookie, else 401 (missing API key)."""
    raw = raw_key_from(request)
    token = request.cookies.get(SESSION_COOKIE) if raw is None else None
    if token:
        found = await session_principal(request, svc, token)
    else:
        found = svc.accounts.cached_principal(raw) or await asyncio.to_thread(svc.accounts.authenticate, raw)
    request.state.principal = found
    return found


AnyRole = Annotated[Principal, Depends(authenticated)]


async def principal(request: Request, who: AnyRole) -> Principal:
    if who.role == "viewer" and request.method not in SAFE_METHODS:
        raise PermissionDenied("this user is a viewer: it can read but not change anything")
    return who


CurrentPrincipal = Annotated[Principal, Depends(principal)]


async def admin(who: CurrentPrincipal) -> Principal:
    if not who.account.is_admin:
        raise PermissionDenied("this action needs an admin account")
    if who.role != "owner":
        raise PermissionDenied(f"this action needs an owner of the admin account (this caller is a {who.role})")
    return who


AdminPrincipal = Annotated[Principal, Depends(admin)]


def rate_limited(group: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates, then counts the request against ``group``'s limits."""

    async def dependency(request: Request, who: CurrentPrincipal, svc: ServicesDep) -> Principal:
        state = await svc.rate_limiter.hit(group, who)
        if state is not None:
            # Added to whatever response the route returns (JSON or a stream) by ResponseHeaders.
            request.state.rate_limit_headers = state.headers()
        return who

    return dependency


# The caller, authenticated and then counted against one endpoint group's rate limits.
InferenceCaller = Annotated[Principal, Depends(rate_limited("inference"))]
ChatCaller = Annotated[Principal, Depends(rate_limited("chat"))]
EmbeddingsCaller = Annotated[Principal, Depends(rate_limited("embeddings"))]
GenerateCaller = Annotated[Principal, Depends(rate_limited("generate"))]
TrainingCaller = Annotated[Principal, Depends(rate_limited("training"))]
