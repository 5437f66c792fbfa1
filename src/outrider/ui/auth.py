"""Who is looking at a page: the signed-in session's user, read from the cookie like on every API surface.
Pages take no API keys: without a valid session the page answers with a redirect to the sign-in page."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from outrider.api.deps import ServicesDep
from outrider.api.sessions import SESSION_COOKIE, session_principal
from outrider.core.errors import SessionInvalid
from outrider.services.accounts import Principal

LOGIN_PATH = "/ui/login"


class SignInRequired(Exception):
    """No session, or one that ended: the page redirects to the sign-in page (see install_ui)."""


async def page_principal(request: Request, svc: ServicesDep) -> Principal:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired
    try:
        # Pages are GETs: no CSRF check; an ended session also queues the cookies' removal.
        return await session_principal(request, svc, token)
    except SessionInvalid:
        raise SignInRequired from None


PageUser = Annotated[Principal, Depends(page_principal)]
