"""Accounts and API keys: first-start bootstrap, key issue/revoke, and authentication.

Raw keys look like ``ork_<40 random chars>``. Only a SHA-256 digest is stored (the key is high-entropy,
so a slow password hash buys nothing and would cost every request); the first 12 characters are kept
as a prefix so people can tell their keys apart.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from outrider.core.errors import AuthenticationFailed, Conflict, InvalidRequest, NotFound, PermissionDenied
from outrider.services.broadcast import RESYNC, Broadcast
from outrider.services.passwords import check_new_password, generate_password, hash_password
from outrider.storage.db import Database
from outrider.storage.queries import accounts as q
from outrider.storage.queries import as_utc, now
from outrider.storage.queries import billing as billing_q
from outrider.storage.queries import users as users_q
from outrider.storage.records import Account, ApiKey, User

KEY_PREFIX = "ork_"
SHOWN_PREFIX_LEN = 12
OPTIMIZE_MODES = ("balanced", "quality", "cost", "latency")
_TOUCH_EVERY = timedelta(minutes=1)
# Upper bounds of the per-key limits: far above any real use, and inside SQLite's 64-bit integers.
MAX_RPM_LIMIT = 10**9
MAX_TPM_LIMIT = 10**12
# Account names end up in logs, CLI output and (later) paths: letters, digits, '.', '_', '-', not starting
# with a dot or a dash, so that '../../evil' and friends are refused.
ACCOUNT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
# Key names are free-form labels (spaces allowed) without control characters.
KEY_NAME_PATTERN = r"^[^\x00-\x1f\x7f]{1,200}$"
RESTRICTIONS = ("model_pool", "rpm_limit", "tpm_limit", "expires_at")


def generate_raw_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(30)


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


ROLES = ("owner", "member", "viewer")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account, the key it used (None: a signed-in session) and the user it acts as (None:
    a key of the account itself, with an owner's rights). A session has no key, hence no key restrictions."""

    account: Account
    key: ApiKey | None
    user: User | None = None

    @property
    def role(self) -> str:
        return self.user.role if self.user is not None else "owner"

    @property
    def key_id(self) -> str | None:
        return self.key.id if self.key is not None else None

    @property
    def user_id(self) -> str | None:
        return self.user.id if self.user is not None else None

    @property
    def caller_id(self) -> str:
        """Whose rate-limit counters a request counts against: the key, or the signed-in user."""
        return self.key.id if self.key is not None else f"session:{self.user_id}"

    @property
    def model_pool(self) -> list[str] | None:
        return self.key.model_pool if self.key is not None else None

    @property
    def optimize_mode(self) -> str | None:
        """The key's routing mode; None (a session): the server's default."""
        return self.key.optimize_mode if self.key is not None else None

    @property
    def rpm_limit(self) -> int | None:
        return self.key.rpm_limit if self.key is not None else None

    @property
    def tpm_limit(self) -> int | None:
        return self.key.tpm_limit if self.key is not None else None


def account_principal(session: Session, account_id: str) -> Principal | None:
    """The account itself as a caller (an owner's rights, no key): what background work (the judge queue, retrain
    runs) calls and is charged as."""
    account = q.get_account(session, account_id)
    return Principal(account=account, key=None) if account is not None else None


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    raw_key: str


@dataclass(frozen=True)
class Bootstrap:
    account: Account
    raw_key: str | None  # set only when a key was generated now and must be shown once
    owner: User | None = None  # the admin account's first owner user (username "admin")
    password: str | None = None  # its password, set only when generated now and shown once


class AccountService:
    def __init__(
        self,
        db: Database,
        *,
        auth_cache_ttl_s: float = 0.0,
        initial_credit_micro_usd: int = 0,
        broadcast: Broadcast | None = None,
    ) -> None:
        self.db = db
        self.initial_credit_micro_usd = initial_credit_micro_usd
        # key hash -> (principal, monotonic expiry). A key or user changed through this service is dropped at
        # once here and, through the broadcast (Redis), in every other API process; a change made where no
        # broadcast reaches (the CLI without OUTRIDER_REDIS_URL) takes effect within the TTL.
        self._auth_cache: dict[str, tuple[Principal, float]] = {}
        self._auth_cache_ttl_s = auth_cache_ttl_s
        self._broadcast = broadcast or Broadcast()
        self._broadcast.on("key", lambda change: self._drop(lambda p: p.key is not None and p.key.id == change["id"]))
        self._broadcast.on("user", lambda change: self._drop(lambda p: p.user_id == change["id"]))
        self._broadcast.on(RESYNC, lambda _change: self._drop(lambda _p: True))

    def bootstrap(self, admin_api_key: str | None, admin_password: str | None = None) -> Bootstrap | None:
        """On first start create the admin account, its first key and its owner user ``admin`` (password
        ``admin_password``, or a generated one returned once). Returns None if already done."""
        password = check_new_password(admin_password, "admin_password") if admin_password else generate_password()
        try:
            return self._bootstrap_once(admin_api_key, admin_password, password)
        except IntegrityError:  # another process sharing the database bootstrapped it at the same moment
            return None

    def _bootstrap_once(self, admin_api_key: str | None, admin_password: str | None, password: str) -> Bootstrap | None:
        with self.db.session() as s:
            if q.count_accounts(s) > 0:
                return None
            # The first admin runs the instance: its calls are metered in usage but never refused for credit.
            account = q.create_account(s, "admin", is_admin=True, unlimited=True)
            raw = admin_api_key or generate_raw_key()
            if not raw.startswith(KEY_PREFIX) or len(raw) < 24:
                raise InvalidRequest(f"the admin API key must start with '{KEY_PREFIX}' and be 24+ characters")
            q.create_key(s, account_id=account.id, name="admin", prefix=raw[:SHOWN_PREFIX_LEN], key_hash=hash_key(raw))
            owner = users_q.create_user(
                s,
                account_id=account.id,
                username="admin",
                email=None,
                role="owner",
                password_hash=hash_password(password),
            )
        return Bootstrap(
            account=account,
            raw_key=None if admin_api_key else raw,
            owner=owner,
            password=None if admin_password else password,
        )

    def create_account(
        self, name: str, *, is_admin: bool = False, unlimited_credits: bool = False, by: Principal | None = None
    ) -> tuple[Account, IssuedKey]:
        """Create an account and its first (unrestricted) key. ``by``: the calling admin (None: the CLI)."""
        if not re.fullmatch(ACCOUNT_NAME_PATTERN, name):
            raise InvalidRequest(
                "name must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit", param="name"
            )
        if by is not None and by.key is not None and is_restricted(by.key):
            # The new account's first key has no restrictions: a restricted key must not be a way to get one.
            raise PermissionDenied(
                f"a key with restrictions ({', '.join(_restrictions_of(by.key))}) cannot create accounts; "
                "use an unrestricted admin key",
                param=_restrictions_of(by.key)[0],
            )
        with self.db.session() as s:
            if q.get_account_by_name(s, name) is not None:
                raise Conflict(f"an account named '{name}' already exists", param="name")
            account = q.create_account(s, name, is_admin=is_admin, unlimited=unlimited_credits)
            if self.initial_credit_micro_usd > 0:
                billing_q.add_credit(
                    s, account.id, self.initial_credit_micro_usd, kind="grant", description="initial credit"
                )
        return account, self.issue_key(account.id, name="default")

    def list_accounts(self) -> list[Account]:
        with self.db.session() as s:
            return q.list_accounts(s)

    def issue_key(
        self,
        account_id: str,
        *,
        name: str,
        model_pool: list[str] | None = None,
        optimize_mode: str = "balanced",
        expires_at: datetime | None = None,
        rpm_limit: int | None = None,
        tpm_limit: int | None = None,
        issuer: Principal | None = None,
    ) -> IssuedKey:
        """Issue a key. ``issuer``: who asks for it (None: the CLI or bootstrap, which may issue any key); the
        new key acts as the issuer's user (its role) and is at most as permissive as the issuer's key (see
        docs/keys-and-accounts.md)."""
        _check_key_name(name)
        _check_key_limits({"rpm_limit": rpm_limit, "tpm_limit": tpm_limit})
        expires_at = _future_expiry(expires_at)
        if optimize_mode not in OPTIMIZE_MODES:
            raise InvalidRequest(f"optimize_mode must be one of {', '.join(OPTIMIZE_MODES)}", param="optimize_mode")
        raw = generate_raw_key()
        with self.db.session() as s:
            if q.get_account(s, account_id) is None:
                raise NotFound(f"account '{account_id}' not found")
            caller = _current_key(s, issuer) if issuer is not None else None
            if caller is not None:
                settings = {"model_pool": model_pool, "rpm_limit": rpm_limit, "tpm_limit": tpm_limit}
                _check_within(caller, {**settings, "expires_at": expires_at}, "create")
            key = q.create_key(
                s,
                account_id=account_id,
                name=name,
                prefix=raw[:SHOWN_PREFIX_LEN],
                key_hash=hash_key(raw),
                model_pool=model_pool,
                optimize_mode=optimize_mode,
                expires_at=expires_at,
                rpm_limit=rpm_limit,
                tpm_limit=tpm_limit,
                user_id=issuer.user_id if issuer is not None else None,
            )
        return IssuedKey(key=key, raw_key=raw)

    def list_keys(self, principal: Principal) -> list[ApiKey]:
        """An owner sees every key of the account; a member or viewer only the keys acting as itself."""
        mine = None if principal.role == "owner" else (principal.user_id or "")
        with self.db.session() as s:
            return q.list_keys(s, principal.account.id, user_id=mine)

    def update_key(self, principal: Principal, key_id: str, changes: dict) -> ApiKey:
        """Change a key's name, model pool, optimisation mode, expiry or limits (owner or admin). A restricted
        caller cannot change its own restrictions, and only changes keys within its bounds to settings within
        them (see docs/keys-and-accounts.md)."""
        unknown = set(changes) - {"name", "model_pool", "optimize_mode", "expires_at", "rpm_limit", "tpm_limit"}
        if unknown:
            raise InvalidRequest(f"keys have no settable fields {sorted(unknown)}", param=sorted(unknown)[0])
        _check_key_limits(changes)
        if "name" in changes:
            _check_key_name(changes["name"])
        if "expires_at" in changes:
            changes = {**changes, "expires_at": _future_expiry(changes["expires_at"])}
        if "optimize_mode" in changes and changes["optimize_mode"] not in OPTIMIZE_MODES:
            raise InvalidRequest(f"optimize_mode must be one of {', '.join(OPTIMIZE_MODES)}", param="optimize_mode")
        with self.db.session() as s:
            key = _managed_key(s, principal, key_id)
            if key.revoked_at is not None:
                raise Conflict("a revoked key cannot be changed", param="key_id")
            caller = _current_key(s, principal)
            if caller is not None and key.id == caller.id:
                _check_own_restrictions_kept(caller, changes)
            elif caller is not None:
                _check_within(caller, _settings_of(key), "change", key_id=key.id)
                _check_within(caller, {**_settings_of(key), **changes}, "change")
            updated = q.update_key(s, key_id, changes)
        self.forget_key(key_id)
        return updated

    def forget_key(self, key_id: str) -> None:
        """Drop a key from the authentication caches (every API process's) so that changes apply to its next
        request."""
        self._broadcast.publish("key", id=key_id)

    def forget_user(self, user_id: str) -> None:
        """Drop a user's keys from the authentication caches (its role, password or state changed)."""
        self._broadcast.publish("user", id=user_id)

    def _drop(self, matches: Callable[[Principal], bool]) -> None:
        self._auth_cache = {h: entry for h, entry in self._auth_cache.items() if not matches(entry[0])}

    def revoke_key(self, principal: Principal, key_id: str) -> ApiKey:
        """Revoke a key. A restricted key may revoke itself and the keys it could have issued (at most as
        permissive as itself), never a wider one: a leaked restricted key cannot lock its owner out."""
        with self.db.session() as s:
            key = _managed_key(s, principal, key_id)
            caller = _current_key(s, principal)
            if caller is not None and key.id != caller.id:
                _check_within(caller, _settings_of(key), "revoke", key_id=key.id)
            revoked = q.revoke_key(s, key_id)
        self.forget_key(key_id)
        return revoked

    def cached_principal(self, raw_key: str | None) -> Principal | None:
        """A recently verified key's principal, without touching the database (None: verify it)."""
        if not raw_key or self._auth_cache_ttl_s <= 0:
            return None
        return self._cached(hash_key(raw_key))

    def _cached(self, digest: str) -> Principal | None:
        cached = self._auth_cache.get(digest)
        if cached is None or cached[1] <= time.monotonic():
            return None
        expires = cached[0].key.expires_at
        return cached[0] if expires is None or expires > now() else None

    def principal_of(self, account_id: str, key_id: str | None, user_id: str | None = None) -> Principal | None:
        """Who queued earlier work, as a principal, without authenticating: the stored key ``key_id`` of account
        ``account_id``, or (no key: a signed-in session) its user ``user_id`` while still enabled. A generation
        job calls its teacher as whoever queued it."""
        with self.db.session() as s:
            if key_id is not None:
                found = q.get_key_with_account(s, key_id, account_id=account_id)
                return Principal(account=found[1], key=found[0], user=found[2]) if found else None
            user = users_q.get_user(s, user_id) if user_id else None
            account = q.get_account(s, account_id)
        if user is None or account is None or user.account_id != account_id or user.disabled:
            return None
        return Principal(account=account, key=None, user=user)

    def authenticate(self, raw_key: str | None) -> Principal:
        if not raw_key:
            raise AuthenticationFailed("missing API key: send it as 'X-API-Key: KEY' or 'Authorization: Bearer KEY'")
        digest = hash_key(raw_key)
        cached = self._cached(digest) if self._auth_cache_ttl_s > 0 else None
        if cached is not None:
            return cached
        with self.db.session() as s:
            found = q.find_key_by_hash(s, digest)
            if found is None:
                raise AuthenticationFailed("invalid API key")
            key, account, user = found
            stamp = now()
            if key.revoked_at is not None:
                raise PermissionDenied("this API key has been revoked")
            if user is not None and user.disabled:
                raise PermissionDenied(f"this API key belongs to user '{user.username}', who is disabled")
            if key.expires_at is not None and key.expires_at <= stamp:
                raise AuthenticationFailed("this API key has expired")
            if key.last_used_at is None or stamp - key.last_used_at > _TOUCH_EVERY:
                q.touch_key(s, key.id, stamp)
        principal = Principal(account=account, key=key, user=user)
        if self._auth_cache_ttl_s > 0:
            if len(self._auth_cache) > 10_000:
                self._auth_cache.clear()
            self._auth_cache[digest] = (principal, time.monotonic() + self._auth_cache_ttl_s)
        return principal


def _check_key_limits(values: dict) -> None:
    for field, most in (("rpm_limit", MAX_RPM_LIMIT), ("tpm_limit", MAX_TPM_LIMIT)):
        value = values.get(field)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most):
            raise InvalidRequest(
                f"{field} must be an integer from 1 to {most} (or null for no per-key limit)", param=field
            )


def _check_key_name(name: object) -> None:
    if not isinstance(name, str) or not re.fullmatch(KEY_NAME_PATTERN, name):
        raise InvalidRequest("name must be 1-200 characters without control characters", param="name")


def _future_expiry(expires_at: datetime | None) -> datetime | None:
    """``expires_at`` in UTC (a time without a zone is taken as UTC), refused unless it is in the future."""
    if expires_at is None:
        return None
    try:
        value = expires_at.replace(tzinfo=UTC) if expires_at.tzinfo is None else expires_at.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00: past the last representable instant
        raise InvalidRequest("expires_at is out of range", param="expires_at") from None
    if value <= now():
        raise InvalidRequest("expires_at must be in the future (revoke a key to stop it now)", param="expires_at")
    return value


def is_restricted(key: ApiKey) -> bool:
    """A key with a model pool, a per-key limit or an expiry. Only unrestricted keys manage keys freely."""
    return bool(_restrictions_of(key))


def _restrictions_of(key: ApiKey) -> list[str]:
    return [field for field, value in _settings_of(key).items() if value is not None]


def _settings_of(key: ApiKey) -> dict:
    return {field: getattr(key, field) for field in RESTRICTIONS}


def _current_key(session: Session, principal: Principal) -> ApiKey | None:
    """The caller's key as stored now (the principal may come from the authentication cache); None for a
    signed-in session, which has no key restrictions."""
    if principal.key is None:
        return None
    return q.get_key(session, principal.key.id) or principal.key


def _check_within(caller: ApiKey, settings: dict, action: str, *, key_id: str | None = None) -> None:
    """Refuse (403) ``settings`` of a key that would be more permissive than the calling key: pool not a
    subset, a looser or missing limit, a later or missing expiry. ``key_id``: the settings are an existing
    key's (revoke, or a change to a key wider than the caller), named in the message."""
    for field in RESTRICTIONS:
        ceiling, value = getattr(caller, field), settings.get(field)
        if ceiling is None:
            continue
        if field == "model_pool":
            wider = value is None or not set(value) <= set(ceiling)
            bound = f"a model_pool within the calling key's {ceiling}"
        elif field == "expires_at":
            wider = value is None or as_utc(value) > as_utc(ceiling)
            bound = f"an expires_at no later than the calling key's ({ceiling.isoformat()})"
        else:
            wider = value is None or value > ceiling
            bound = f"a {field} of at most the calling key's {ceiling}"
        if not wider:
            continue
        if key_id is not None:
            raise PermissionDenied(
                f"key '{key_id}' is more permissive than the calling key ({field}): only an unrestricted key "
                f"can {action} it",
                param=field,
            )
        raise PermissionDenied(
            f"{field}: a key can only {action} keys at most as permissive as itself; this one needs {bound}",
            param=field,
        )


def _check_own_restrictions_kept(caller: ApiKey, changes: dict) -> None:
    """A restricted key cannot change its own pool, limits or expiry (it could lift them); resending the
    current value is not a change."""
    if not is_restricted(caller):
        return
    for field in RESTRICTIONS:
        if field not in changes:
            continue
        current, new = getattr(caller, field), changes[field]
        same = (
            as_utc(current) == as_utc(new)
            if field == "expires_at"
            else (sorted(current) == sorted(new) if field == "model_pool" and current and new else current == new)
        )
        if not same:
            raise PermissionDenied(
                f"{field}: a key with restrictions cannot change its own {field}; use an unrestricted key",
                param=field,
            )


def _managed_key(session: Session, principal: Principal, key_id: str) -> ApiKey:
    """The key, if the caller may manage it; 404 otherwise. An owner manages its account's keys (an admin
    account's owner: any key), a member only the keys acting as itself."""
    key = q.get_key(session, key_id)
    if key is None or (key.account_id != principal.account.id and not principal.account.is_admin):
        raise NotFound(f"key '{key_id}' not found")
    if principal.role != "owner" and (principal.user_id is None or key.user_id != principal.user_id):
        raise NotFound(f"key '{key_id}' not found")
    return key
