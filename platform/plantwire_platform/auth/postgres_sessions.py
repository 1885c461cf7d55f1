"""Sessions and one-time login links in the ``auth_secrets`` table, shared by every replica.

Each row is keyed by the SHA-256 of the session id or nonce (`sessions.secret_key`), never the
secret, and holds the digest of the token it stands for, with its expiry by the database's clock
(so replicas whose clocks differ agree). The bounds are those of the in-memory stores: issuing
purges every expired row, then drops the oldest of its kind beyond `max_entries`. Redeeming a
login link deletes its row (``DELETE ... RETURNING``): it works once, on whichever replica.
Logging out deletes the session's row. A cookie or nonce not of the shape a secret has is refused
without a query (junk costs the database nothing).

A short positive cache per process (`CACHE_S`, 1 s; at most `CACHE_MAX` sessions) spares a round
trip per dashboard request: a session ended on another replica may still be accepted here for up
to `CACHE_S`, never past its own expiry; one ended here is forgotten at once. A revoked token ends
its sessions through the token catalog (checked from memory on every request), not this cache.
"""

from __future__ import annotations

import re
import secrets
import time
from collections import OrderedDict
from typing import Final, Literal

from plantwire_platform.auth.postgres_auth import PostgresAuth
from plantwire_platform.auth.sessions import SECRET_BYTES, Session, secret_key

CACHE_S: Final = 1.0
CACHE_MAX: Final = 1024
SECRET_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{43}")
"""What `secrets.token_urlsafe(SECRET_BYTES)` makes: anything else is refused without a query."""
Kind = Literal["session", "login_link"]

_ISSUE: Final = (
    "INSERT INTO auth_secrets (kind, key, token_digest, expires) "
    "VALUES ($1, $2, $3, now() + make_interval(secs => $4))"
)
_PURGE: Final = "DELETE FROM auth_secrets WHERE expires <= now()"
_TRIM: Final = (
    "DELETE FROM auth_secrets WHERE key IN (SELECT key FROM auth_secrets WHERE kind = $1 "
    "ORDER BY created DESC, key OFFSET $2)"
)
_GET: Final = (
    "SELECT token_digest, extract(epoch FROM expires - now())::float8 AS left_s FROM auth_secrets "
    "WHERE kind = $1 AND key = $2 AND expires > now()"
)
_POP: Final = (
    "DELETE FROM auth_secrets WHERE kind = $1 AND key = $2 RETURNING token_digest, expires > now() AS live"
)


class PostgresSecrets:
    """Random secrets of one kind mapped to token digests, each valid for `ttl_s`, at most `max_entries`."""

    def __init__(self, auth: PostgresAuth, kind: Kind, ttl_s: float, max_entries: int) -> None:
        self.auth, self.kind, self.ttl_s, self._max = auth, kind, ttl_s, max_entries

    async def issue(self, token_digest: bytes) -> str:
        secret = secrets.token_urlsafe(SECRET_BYTES)
        await self.auth.call(self._issue(secret_key(secret), token_digest))
        return secret

    async def _issue(self, key: bytes, token_digest: bytes) -> None:
        async with self.auth.pool.acquire() as conn, conn.transaction():
            await conn.execute(_PURGE)
            await conn.execute(_ISSUE, self.kind, key, token_digest, self.ttl_s)
            await conn.execute(_TRIM, self.kind, self._max)

    async def get(self, secret: str) -> tuple[bytes, float] | None:
        """The token digest and the seconds left, while the secret is valid."""
        if not SECRET_PATTERN.fullmatch(secret):
            return None
        row = await self.auth.call(self.auth.pool.fetchrow(_GET, self.kind, secret_key(secret)))
        return None if row is None else (bytes(row["token_digest"]), float(row["left_s"]))

    async def pop(self, secret: str) -> bytes | None:
        """The token digest, once: the row is gone afterwards, on every replica."""
        if not SECRET_PATTERN.fullmatch(secret):
            return None
        row = await self.auth.call(self.auth.pool.fetchrow(_POP, self.kind, secret_key(secret)))
        return None if row is None or not row["live"] else bytes(row["token_digest"])


class PostgresSessions:
    """`SessionBackend` in PostgreSQL, with the short positive cache described above."""

    def __init__(self, auth: PostgresAuth, ttl_s: float, max_entries: int, cache_s: float = CACHE_S) -> None:
        self._rows = PostgresSecrets(auth, "session", ttl_s, max_entries)
        self._cache_s = cache_s
        self._cache: OrderedDict[bytes, tuple[float, Session]] = OrderedDict()  # oldest first

    async def open(self, token_digest: bytes) -> str:
        return await self._rows.issue(token_digest)

    async def get(self, session_id: str) -> Session | None:
        key = secret_key(session_id)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None:
            if cached[0] > now:
                return cached[1]
            del self._cache[key]
        found = await self._rows.get(session_id)
        if found is None:
            return None
        session = Session(found[0])
        if self._cache_s > 0:
            self._cache[key] = (now + min(self._cache_s, found[1]), session)
            while len(self._cache) > CACHE_MAX:
                self._cache.popitem(last=False)
        return session

    async def close(self, session_id: str) -> None:
        self._cache.pop(secret_key(session_id), None)
        await self._rows.pop(session_id)


class PostgresLinks:
    """`LinkBackend` in PostgreSQL: a nonce issued on one replica is redeemed once, on any."""

    def __init__(self, auth: PostgresAuth, ttl_s: float, max_entries: int) -> None:
        self._rows = PostgresSecrets(auth, "login_link", ttl_s, max_entries)

    async def issue(self, token_digest: bytes) -> str:
        return await self._rows.issue(token_digest)

    async def redeem(self, nonce: str) -> bytes | None:
        return await self._rows.pop(nonce)
