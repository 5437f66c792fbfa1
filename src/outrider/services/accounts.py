"""Accounts and API keys: first-start bootstrap, key issue/revoke, and authentication.

Raw keys look like ``ork_<40 random chars>``. Only a SHA-256 digest is stored (the key is high-entropy,
so a slow password hash buys nothing and would cost every request); the first 12 characters are kept
as a prefix so people can tell their keys apart.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from outrider.core.errors import AuthenticationFailed, Conflict, InvalidRequest, NotFound, PermissionDenied
from outrider.storage.db import Database
from outrider.storage.queries import accounts as q
from outrider.storage.queries import billing as billing_q
from outrider.storage.queries import now
from outrider.storage.records import Account, ApiKey

KEY_PREFIX = "ork_"
SHOWN_PREFIX_LEN = 12
OPTIMIZE_MODES = ("balanced", "quality", "cost", "latency")
_TOUCH_EVERY = timedelta(minutes=1)


def generate_raw_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(30)


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account and the key it used."""

    account: Account
    key: ApiKey


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    raw_key: str


@dataclass(frozen=True)
class Bootstrap:
    account: Account
    raw_key: str | None  # set only when a key was generated now and must be shown once


class AccountService:
    def __init__(self, db: Database, *, auth_cache_ttl_s: float = 0.0, initial_credit_micro_usd: int = 0) -> None:
        self.db = db
        self.initial_credit_micro_usd = initial_credit_micro_usd
        # key hash -> (principal, monotonic expiry). Revoking through this service drops the entry at once;
        # a revocation made by another process (the CLI) takes effect within the TTL.
        self._auth_cache: dict[str, tuple[Principal, float]] = {}
        self._auth_cache_ttl_s = auth_cache_ttl_s

    def bootstrap(self, admin_api_key: str | None) -> Bootstrap | None:
        """On first start create the admin account and its first key. Returns None if already done."""
        with self.db.session() as s:
            if q.count_accounts(s) > 0:
                return None
            # The first admin runs the instance: its calls are metered in usage but never refused for credit.
            account = q.create_account(s, "admin", is_admin=True, unlimited=True)
            raw = admin_api_key or generate_raw_key()
            if not raw.startswith(KEY_PREFIX) or len(raw) < 24:
                raise InvalidRequest(f"the admin API key must start with '{KEY_PREFIX}' and be 24+ characters")
            q.create_key(s, account_id=account.id, name="admin", prefix=raw[:SHOWN_PREFIX_LEN], key_hash=hash_key(raw))
        return Bootstrap(account=account, raw_key=None if admin_api_key else raw)

    def create_account(
        self, name: str, *, is_admin: bool = False, unlimited_credits: bool = False
    ) -> tuple[Account, IssuedKey]:
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
    ) -> IssuedKey:
        _check_key_limits({"rpm_limit": rpm_limit, "tpm_limit": tpm_limit})
        if optimize_mode not in OPTIMIZE_MODES:
            raise InvalidRequest(f"optimize_mode must be one of {', '.join(OPTIMIZE_MODES)}", param="optimize_mode")
        raw = generate_raw_key()
        with self.db.session() as s:
            if q.get_account(s, account_id) is None:
                raise NotFound(f"account '{account_id}' not found")
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
            )
        return IssuedKey(key=key, raw_key=raw)

    def list_keys(self, principal: Principal) -> list[ApiKey]:
        with self.db.session() as s:
            return q.list_keys(s, principal.account.id)

    def update_key(self, principal: Principal, key_id: str, changes: dict) -> ApiKey:
        """Change a key's name, model pool, optimisation mode or expiry (owner or admin)."""
        unknown = set(changes) - {"name", "model_pool", "optimize_mode", "expires_at", "rpm_limit", "tpm_limit"}
        if unknown:
            raise InvalidRequest(f"keys have no settable fields {sorted(unknown)}", param=sorted(unknown)[0])
        _check_key_limits(changes)
        if "optimize_mode" in changes and changes["optimize_mode"] not in OPTIMIZE_MODES:
            raise InvalidRequest(f"optimize_mode must be one of {', '.join(OPTIMIZE_MODES)}", param="optimize_mode")
        with self.db.session() as s:
            key = _managed_key(s, principal, key_id)
            if key.revoked_at is not None:
                raise Conflict("a revoked key cannot be changed", param="key_id")
            updated = q.update_key(s, key_id, changes)
        self._forget(key_id)
        return updated

    def _forget(self, key_id: str) -> None:
        """Drop a key from the authentication cache so that changes apply to its next request."""
        self._auth_cache = {h: entry for h, entry in self._auth_cache.items() if entry[0].key.id != key_id}

    def revoke_key(self, principal: Principal, key_id: str) -> ApiKey:
        with self.db.session() as s:
            _managed_key(s, principal, key_id)
            revoked = q.revoke_key(s, key_id)
        self._forget(key_id)
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
            key, account = found
            stamp = now()
            if key.revoked_at is not None:
                raise PermissionDenied("this API key has been revoked")
            if key.expires_at is not None and key.expires_at <= stamp:
                raise AuthenticationFailed("this API key has expired")
            if key.last_used_at is None or stamp - key.last_used_at > _TOUCH_EVERY:
                q.touch_key(s, key.id, stamp)
        principal = Principal(account=account, key=key)
        if self._auth_cache_ttl_s > 0:
            if len(self._auth_cache) > 10_000:
                self._auth_cache.clear()
            self._auth_cache[digest] = (principal, time.monotonic() + self._auth_cache_ttl_s)
        return principal


def _check_key_limits(values: dict) -> None:
    for field in ("rpm_limit", "tpm_limit"):
        value = values.get(field)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise InvalidRequest(f"{field} must be a positive integer (or null for no per-key limit)", param=field)


def _managed_key(session: Session, principal: Principal, key_id: str) -> ApiKey:
    """The key, if the caller may manage it (its own account's, or any for an admin); 404 otherwise."""
    key = q.get_key(session, key_id)
    if key is None or (key.account_id != principal.account.id and not principal.account.is_admin):
        raise NotFound(f"key '{key_id}' not found")
    return key
