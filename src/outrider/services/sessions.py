"""Signed-in sessions: password sign-in, session tokens (JWT, HS256, signed with OUTRIDER_SECRET_KEY),
sign-out, and the throttle on failed sign-ins.

A token carries the user, its account, the user's ``session_version`` when issued, the sign-in time and a
SHA-256 digest of the session's CSRF token. The server reads the user on every request: a token whose version
is behind (sign-out, a password change, a demotion, disabling) is refused, as is one past its expiry. A token
past half its lifetime is renewed (sliding), never beyond ``session_max_age_s`` after sign-in.

Sign-in attempts are counted before the password is checked, per username/email and per client address, so
concurrent guesses cannot outrun the count; a successful sign-in clears its username's count. Unknown names
verify a dummy hash, so that they take as long to refuse as a wrong password.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass

import jwt
from limits import RateLimitItem, RateLimitItemPerSecond

from outrider.config import Settings
from outrider.core.errors import AuthenticationFailed, RateLimited, SessionInvalid
from outrider.services.accounts import Principal
from outrider.services.passwords import verify_password
from outrider.services.rate_limits import Windows
from outrider.storage.db import Database
from outrider.storage.queries import accounts as accounts_q
from outrider.storage.queries import users as q

ALGORITHM = "HS256"
ISSUER = "outrider"
BAD_LOGIN = "invalid username, email or password"
MAX_LOGIN_CHARS = 254


@dataclass(frozen=True)
class SessionToken:
    token: str
    csrf_token: str
    expires_at: float  # epoch seconds
    max_age_s: int


@dataclass(frozen=True)
class Session:
    """An authenticated session: who, the CSRF digest its token carries, and a renewed token when it was
    past half its lifetime (to be set as the new cookie)."""

    principal: Principal
    csrf_digest: str
    expires_at: float
    renewed: SessionToken | None = None


def csrf_digest(csrf_token: str) -> str:
    return hashlib.sha256(csrf_token.encode()).hexdigest()


class SessionService:
    def __init__(self, db: Database, settings: Settings, windows: Windows) -> None:
        self.db = db
        self.settings = settings
        self._windows = windows
        window = settings.login_window_s
        self._per_user: RateLimitItem = RateLimitItemPerSecond(settings.login_failures_per_user, window)
        self._per_address: RateLimitItem = RateLimitItemPerSecond(settings.login_attempts_per_address, window)

    # -- sign-in and sign-out ------------------------------------------------------------------------------

    async def login(self, login: str, password: str, address: str) -> tuple[Principal, SessionToken]:
        """Check a password; raise RateLimited (429) past the throttle, AuthenticationFailed (401) otherwise."""
        name = login.strip().lower()[:MAX_LOGIN_CHARS]
        await self._count_attempt("address", address, self._per_address)
        await self._count_attempt("user", name, self._per_user)
        found = await asyncio.to_thread(self._check_password, name, password)
        if found is None:
            raise AuthenticationFailed(BAD_LOGIN)
        await self._windows.clear(self._per_user, "login", "user", name)
        return found, self.issue(found, auth_time=time.time())

    def _check_password(self, name: str, password: str) -> Principal | None:
        with self.db.session() as s:
            found = q.find_login(s, name)
            account = accounts_q.get_account(s, found[0].account_id) if found else None
        matched = verify_password(found[1] if found else None, password)  # a dummy hash when unknown
        if not matched or found is None or account is None or found[0].disabled:
            return None
        return Principal(account=account, key=None, user=found[0])

    async def _count_attempt(self, scope: str, ident: str, item: RateLimitItem) -> None:
        if await self._windows.hit(item, "login", scope, ident):
            return
        stats = await self._windows.get_window_stats(item, "login", scope, ident)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        what = "this username or email" if scope == "user" else "this address"
        raise RateLimited(f"too many sign-in attempts for {what}; retry in {retry_after} s", retry_after=retry_after)

    def logout(self, principal: Principal) -> None:
        """End every session of the user: tokens issued so far carry a version the server no longer accepts."""
        if principal.user is not None:
            with self.db.session() as s:
                q.end_sessions(s, principal.user.id)

    # -- tokens --------------------------------------------------------------------------------------------

    def issue(self, principal: Principal, *, auth_time: float, csrf_token: str | None = None) -> SessionToken:
        """A token for the user's current session version, valid for the lifetime but never past the
        maximum age after sign-in. ``csrf_token``: keep the session's (renewal); None: a new one."""
        user = principal.user
        assert user is not None, "sessions are for users"
        issued = time.time()
        expires = min(issued + self.settings.session_lifetime_s, auth_time + self.settings.session_max_age_s)
        csrf_token = csrf_token or secrets.token_urlsafe(32)
        claims = {
            "iss": ISSUER,
            "sub": user.id,
            "acc": principal.account.id,
            "ver": user.session_version,
            "iat": int(issued),
            "exp": int(expires),
            "auth": int(auth_time),
            "csrf": csrf_digest(csrf_token),
        }
        token = jwt.encode(claims, self.settings.secret_key, algorithm=ALGORITHM)
        return SessionToken(token, csrf_token, int(expires), max(0, int(expires - issued)))

    def authenticate(self, token: str, csrf_cookie: str | None) -> Session:
        """The session a cookie token stands for, read against the stored user; 401 when it is tampered with,
        expired, signed out or its user is disabled. ``csrf_cookie`` is kept in a renewed token."""
        claims = self._decode(token)
        with self.db.session() as s:
            user = q.get_user(s, claims["sub"])
            account = accounts_q.get_account(s, claims["acc"]) if user else None
        if user is None or account is None or user.account_id != account.id or user.disabled:
            raise SessionInvalid("this session's user no longer exists or is disabled; sign in again")
        if user.session_version != claims["ver"]:
            raise SessionInvalid("this session has ended (signed out or password changed); sign in again")
        principal = Principal(account=account, key=None, user=user)
        renewed = None
        half_life = self.settings.session_lifetime_s / 2
        keeps_csrf = csrf_cookie is not None and hmac.compare_digest(csrf_digest(csrf_cookie), claims["csrf"])
        if time.time() - claims["iat"] > half_life and keeps_csrf:
            candidate = self.issue(principal, auth_time=claims["auth"], csrf_token=csrf_cookie)
            renewed = candidate if candidate.expires_at > claims["exp"] else None
        return Session(principal, claims["csrf"], float(claims["exp"]), renewed)

    def _decode(self, token: str) -> dict:
        try:
            claims = jwt.decode(
                token,
                self.settings.secret_key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise SessionInvalid("this session has expired; sign in again") from None
        except jwt.PyJWTError:
            raise SessionInvalid("invalid session token") from None
        shape = {"sub": str, "acc": str, "ver": int, "iat": int, "auth": int, "csrf": str}
        if any(type(claims.get(name)) is not kind for name, kind in shape.items()):
            raise SessionInvalid("invalid session token")
        return claims
