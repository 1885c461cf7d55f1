"""Browser sessions and one-time login links, kept in memory, bounded and expiring.

A session is what the dashboard holds instead of a token: a random id in an HttpOnly cookie. It
remembers the *digest* of the token it was opened with, so revoking the token ends its sessions
too. A login link (``/login?once=<nonce>``) is a nonce that becomes a session once, within a
short time; the token itself never appears in a URL.

Both are keyed by the SHA-256 of their secret and never keep the secret itself. Both are bounded:
when full, the oldest entry goes. The web edge uses them through two small async protocols,
`SessionBackend` and `LinkBackend`: here in memory (`MemorySessions`, `MemoryLinks`; a platform
restart ends every session), or in the store's PostgreSQL schema, shared by every replica
(postgres_sessions.py).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, Protocol, TypeVar

SECRET_BYTES: Final = 32
T = TypeVar("T")


def secret_key(secret: str) -> bytes:
    """What a session id or a login nonce is stored under: its SHA-256, never itself."""
    return hashlib.sha256(secret.encode("ascii", "replace")).digest()


class ExpiringSecrets(Generic[T]):
    """New random secrets mapped to values, each valid for `ttl_s`, at most `max_entries` at once."""

    def __init__(self, ttl_s: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[float, T]] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._entries)

    def _purge(self, now: float) -> None:
        while self._entries:
            expires, _ = next(iter(self._entries.values()))
            if expires > now:
                break
            self._entries.popitem(last=False)

    def issue(self, value: T) -> str:
        now = self._clock()
        self._purge(now)
        secret = secrets.token_urlsafe(SECRET_BYTES)
        self._entries[secret_key(secret)] = (now + self.ttl_s, value)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return secret

    def get(self, secret: str) -> T | None:
        entry = self._entries.get(secret_key(secret))
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[secret_key(secret)]
            return None
        return entry[1]

    def pop(self, secret: str) -> T | None:
        """The value, once: the secret is gone afterwards."""
        value = self.get(secret)
        self._entries.pop(secret_key(secret), None)
        return value


@dataclass(frozen=True, slots=True)
class Session:
    token_digest: bytes
    """The digest of the token this session was opened with (its identity is looked up each time)."""


class SessionStore(ExpiringSecrets[Session]):
    def open(self, token_digest: bytes) -> str:
        """A new session id for the cookie."""
        return self.issue(Session(token_digest))

    def close(self, session_id: str) -> None:
        self.pop(session_id)


class LoginLinks(ExpiringSecrets[bytes]):
    """One-time login nonces, each standing for a token digest."""

    def redeem(self, nonce: str) -> bytes | None:
        return self.pop(nonce)


class SessionBackend(Protocol):
    """Browser sessions as the web edge uses them."""

    async def open(self, token_digest: bytes) -> str: ...
    async def get(self, session_id: str) -> Session | None: ...
    async def close(self, session_id: str) -> None: ...


class LinkBackend(Protocol):
    """One-time login links as the web edge uses them."""

    async def issue(self, token_digest: bytes) -> str: ...
    async def redeem(self, nonce: str) -> bytes | None: ...


class MemorySessions:
    """`SessionBackend` on a `SessionStore` of this process."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    async def open(self, token_digest: bytes) -> str:
        return self.store.open(token_digest)

    async def get(self, session_id: str) -> Session | None:
        return self.store.get(session_id)

    async def close(self, session_id: str) -> None:
        self.store.close(session_id)


class MemoryLinks:
    """`LinkBackend` on `LoginLinks` of this process."""

    def __init__(self, links: LoginLinks) -> None:
        self.links = links

    async def issue(self, token_digest: bytes) -> str:
        return self.links.issue(token_digest)

    async def redeem(self, nonce: str) -> bytes | None:
        return self.links.redeem(nonce)
