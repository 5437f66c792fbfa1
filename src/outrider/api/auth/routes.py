"""Sign-in, sign-out, the current session and its user's password; users of an account (owners).

Thin: the rules live in services/sessions.py and services/users.py, the cookies in api/sessions.py."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from fastapi import APIRouter, Query, Request, Response

from outrider.api.admin.routes import account_out
from outrider.api.deps import AnyRole, CurrentPrincipal, ServicesDep
from outrider.api.sessions import (
    SESSION_COOKIE,
    check_login_origin,
    clearing_cookies,
    queue_cookies,
    secure_cookies,
    session_cookies,
    session_principal,
)
from outrider.core.errors import SessionInvalid
from outrider.services.accounts import Principal
from outrider.services.sessions import SessionToken
from outrider.storage.records import User

from .schemas import LoginRequest, PasswordChange, SessionOut, UserCreate, UserCreated, UserList, UserOut, UserUpdate

router = APIRouter(tags=["sign-in and users"])


def user_out(user: User) -> UserOut:
    return UserOut(**{name: getattr(user, name) for name in UserOut.model_fields})


def _session_out(who: Principal, expires_at: float | None, csrf_token: str | None = None) -> SessionOut:
    return SessionOut(
        user=user_out(who.user) if who.user is not None else None,
        account=account_out(who.account),
        role=who.role,
        expires_at=datetime.fromtimestamp(expires_at, UTC) if expires_at is not None else None,
        csrf_token=csrf_token,
    )


def _start(request: Request, svc: ServicesDep, who: Principal, token: SessionToken) -> SessionOut:
    queue_cookies(request, session_cookies(token, secure_cookies(request, svc.settings)))
    return _session_out(who, token.expires_at, token.csrf_token)


@router.post("/auth/login", response_model=SessionOut)
async def login(body: LoginRequest, request: Request, svc: ServicesDep) -> SessionOut:
    check_login_origin(request, svc.settings)
    address = request.client.host if request.client else "unknown"
    who, token = await svc.sessions.login(body.login, body.password, address)
    return _start(request, svc, who, token)


@router.post("/auth/logout", status_code=204)
async def logout(request: Request, svc: ServicesDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    who = None
    if token:
        try:
            who = await session_principal(request, svc, token)  # a write: CSRF header and same origin
        except SessionInvalid:
            who = None  # already over: only the cookies are left to clear
    if who is not None:
        await asyncio.to_thread(svc.sessions.logout, who)
    queue_cookies(request, clearing_cookies(secure_cookies(request, svc.settings)))
    return Response(status_code=204)


@router.get("/auth/me", response_model=SessionOut)
async def me(request: Request, who: AnyRole) -> SessionOut:
    return _session_out(who, getattr(request.state, "session_expires_at", None))


@router.post("/auth/password", response_model=SessionOut)
async def change_password(body: PasswordChange, request: Request, who: AnyRole, svc: ServicesDep) -> SessionOut:
    user = await asyncio.to_thread(svc.users.change_own_password, who, body.current_password, body.new_password)
    updated = Principal(account=who.account, key=who.key, user=user)
    if who.key is not None:
        return _session_out(updated, None)
    # Every earlier session ended with the change; this one goes on with a fresh token.
    return _start(request, svc, updated, svc.sessions.issue(updated, auth_time=time.time()))


@router.get("/users", response_model=UserList)
async def list_users(
    who: CurrentPrincipal, svc: ServicesDep, account_id: str | None = Query(None, max_length=40)
) -> UserList:
    users = await asyncio.to_thread(svc.users.list, who, account_id)
    return UserList(users=[user_out(u) for u in users])


@router.post("/users", response_model=UserCreated, status_code=201)
async def create_user(body: UserCreate, who: CurrentPrincipal, svc: ServicesDep) -> UserCreated:
    created = await asyncio.to_thread(
        lambda: svc.users.create(
            who,
            username=body.username,
            role=body.role,
            email=body.email,
            password=body.password,
            account_id=body.account_id,
        )
    )
    return UserCreated(**user_out(created.user).model_dump(), password=created.password)


@router.patch("/users/{user_id}", response_model=UserOut)
async def update_user(user_id: str, body: UserUpdate, who: CurrentPrincipal, svc: ServicesDep) -> UserOut:
    changes = body.model_dump(exclude_unset=True)
    return user_out(await asyncio.to_thread(svc.users.update, who, user_id, changes))
