"""Password hashing (argon2id, argon2-cffi's defaults) and the rules a new password must meet."""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from outrider.core.errors import InvalidRequest

MIN_PASSWORD_CHARS = 8
# Long enough for any passphrase, short enough that hashing one is not a way to burn the server's CPU.
MAX_PASSWORD_CHARS = 1024

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified for logins naming no user, so that an unknown name takes as long to refuse as a wrong password."""
    return _hasher.hash(secrets.token_urlsafe(16))


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def check_new_password(password: object, param: str = "password") -> str:
    if not isinstance(password, str) or not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise InvalidRequest(f"{param} must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters", param=param)
    if any(ord(c) < 0x20 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF for c in password):
        raise InvalidRequest(f"{param} must not contain control characters or lone surrogates", param=param)
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; with no hash (no such user) a dummy hash is verified and False returned."""
    try:
        matched = _hasher.verify(password_hash or _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError, UnicodeEncodeError):  # a lone surrogate
        return False
    return matched and password_hash is not None
