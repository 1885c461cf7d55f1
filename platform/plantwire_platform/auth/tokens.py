"""API tokens: how a secret is made, recognised and reduced to the digest that is stored.

A token is ``pw_`` followed by `secrets.token_urlsafe(32)` (256 random bits). It is shown once,
when it is created; the platform keeps only its SHA-256 digest.

Why a plain SHA-256 and not a password hash (bcrypt, scrypt, argon2): those are slow on purpose so
that guessing a *low-entropy* password from a stolen hash costs a lot per guess. A token has 256
bits of entropy: nobody can enumerate that space at any speed, so slowness buys nothing, while a
fast digest lets every request be checked in about a microsecond. A salt is not needed either:
salts defeat precomputed tables, which cannot exist for random 256-bit inputs.

The digest is also the lookup key. Looking a digest up leaks, through timing, at most something
about a hash the attacker cannot invert; the final equality is still `hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

from plantwire_platform.auth.scopes import Scope

TOKEN_PREFIX: Final = "pw_"
TOKEN_BYTES: Final = 32
TOKEN_PATTERN: Final = re.compile(r"pw_[A-Za-z0-9_-]{43}")
"""What `new_token` makes: the prefix and 43 url-safe base64 characters (32 bytes)."""
NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
"""Token names: they appear in the audit log and in URLs (DELETE /api/tokens/{name})."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request is: the token's name (what the audit records) and what it may do."""

    name: str
    scope: Scope


class InvalidTokenName(ValueError):
    """A token name that does not match NAME_PATTERN."""


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidTokenName(
            f"token name {name!r} is not allowed: 1 to 64 letters, digits, '.', '_', ':' or '-', "
            "starting with a letter or digit"
        )
    return name


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def looks_like_token(text: str) -> bool:
    """A cheap shape check, so that junk never reaches the catalog."""
    return TOKEN_PATTERN.fullmatch(text) is not None


def token_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii", "replace")).digest()


def same_digest(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
