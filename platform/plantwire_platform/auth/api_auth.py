"""Everything the web edge needs to decide who a request is, as one object the app holds.

`ApiAuth` joins the token catalog, the browser sessions, the one-time login links, the failure
limiter and their counters; the aiohttp middleware (web/auth_middleware.py) only translates
between HTTP and these calls.

Where they live (`api_auth_running`): with no `AuthDatabase`, tokens in `<data_dir>/auth.sqlite`,
sessions and links in this process's memory. With one (the PostgreSQL store), all three in the
store's schema (postgres_auth.py, postgres_sessions.py), so any replica answers any request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import InitVar, dataclass, field
from pathlib import Path

from plantwire_platform.auth.auth_database import AuthDatabase
from plantwire_platform.auth.auth_settings import AuthSettings
from plantwire_platform.auth.auth_stats import AuthStats
from plantwire_platform.auth.failure_limiter import FailureLimiter
from plantwire_platform.auth.log_throttle import LogThrottle
from plantwire_platform.auth.sessions import (
    LinkBackend,
    LoginLinks,
    MemoryLinks,
    MemorySessions,
    SessionBackend,
    SessionStore,
)
from plantwire_platform.auth.token_catalog import TokenCatalog, TokenCatalogBackend, tokens_path
from plantwire_platform.auth.token_service import AsyncTokenCatalog, catalog_service, token_service
from plantwire_platform.auth.tokens import Identity, looks_like_token, token_digest

LINKS_MAX = 100
"""One-time login links open at once, at most (the oldest go first)."""


@dataclass(frozen=True, slots=True)
class SharedSecrets:
    """Sessions and login links kept elsewhere than this process's memory (one database)."""

    sessions: SessionBackend
    links: LinkBackend


@dataclass
class ApiAuth:
    tokens: AsyncTokenCatalog
    settings: AuthSettings
    origins: frozenset[str]
    """Origins allowed to send state-changing requests and to open WebSockets."""
    stats: AuthStats = field(default_factory=AuthStats)
    shared: InitVar[SharedSecrets | None] = None
    """None: sessions and login links in this process's memory."""
    sessions: SessionBackend = field(init=False)
    links: LinkBackend = field(init=False)
    limiter: FailureLimiter = field(init=False)
    log_throttle: LogThrottle = field(default_factory=LogThrottle)
    """Refusals that need no credential (foreign origins) are logged once a minute per origin."""

    def __post_init__(self, shared: SharedSecrets | None) -> None:
        s = self.settings
        if shared is None:
            self.sessions = MemorySessions(SessionStore(s.session_ttl_s, s.max_sessions))
            self.links = MemoryLinks(LoginLinks(s.login_link_ttl_s, max_entries=LINKS_MAX))
        else:
            self.sessions, self.links = shared.sessions, shared.links
        self.limiter = FailureLimiter(
            s.failure_burst, s.failure_refill_s, s.failure_max_addresses, self.stats
        )

    def by_token(self, secret: str) -> Identity | None:
        return self.tokens.verify(secret)

    async def by_session(self, session_id: str) -> Identity | None:
        """The session's identity while both the session and the token it was opened with exist."""
        session = await self.sessions.get(session_id)
        return None if session is None else self.tokens.identity_for(session.token_digest)

    async def log_in(self, secret: str) -> tuple[str, Identity] | None:
        """A new session id for a valid token, with its identity."""
        identity = self.by_token(secret)
        if identity is None:
            return None
        return await self.sessions.open(token_digest(secret)), identity

    async def link_for(self, secret: str) -> str | None:
        """A one-time login nonce standing for this token (None if the token is not valid)."""
        if not looks_like_token(secret) or self.by_token(secret) is None:
            return None
        return await self.links.issue(token_digest(secret))

    async def link_for_digest(self, digest: bytes) -> str:
        return await self.links.issue(digest)

    async def redeem_link(self, nonce: str) -> tuple[str, Identity] | None:
        digest = await self.links.redeem(nonce)
        identity = None if digest is None else self.tokens.identity_for(digest)
        if digest is None or identity is None:
            return None
        return await self.sessions.open(digest), identity


@contextlib.asynccontextmanager
async def api_auth_running(
    settings: AuthSettings,
    data_dir: Path,
    http_host: str,
    http_port: int,
    database: AuthDatabase | None = None,
) -> AsyncIterator[ApiAuth]:
    """The platform's auth, kept current until the context exits.

    Without `database`: the token catalog in `data_dir` (the folder of the store file,
    ``settings.store.path.parent``), sessions in memory. With it: tokens, sessions and login links
    in that PostgreSQL schema, shared with every replica on it. The allowed origins default to the
    platform's own HTTP address.
    """
    origins = settings.origins(http_host, http_port)
    if database is None:
        async with token_service(tokens_path(data_dir)) as tokens:
            yield ApiAuth(tokens, settings, origins)
        return
    # asyncpg is an optional extra: imported only when the store is PostgreSQL.
    from plantwire_platform.auth.postgres_auth import PostgresAuth, PostgresTokenCatalog
    from plantwire_platform.auth.postgres_sessions import PostgresLinks, PostgresSessions

    db = await asyncio.to_thread(PostgresAuth.open, database)
    try:
        async with catalog_service(lambda: PostgresTokenCatalog(db)) as tokens:
            shared = SharedSecrets(
                PostgresSessions(db, settings.session_ttl_s, settings.max_sessions),
                PostgresLinks(db, settings.login_link_ttl_s, LINKS_MAX),
            )
            yield ApiAuth(tokens, settings, origins, shared=shared)
    finally:
        await asyncio.to_thread(db.close)


def open_token_catalog(data_dir: Path, database: AuthDatabase | None) -> TokenCatalogBackend:
    """The token catalog a platform with these settings uses, opened for direct use (blocking; the
    CLI's and the tests' way in): the PostgreSQL schema's when `database` is given, else the SQLite
    file in `data_dir`. Close it after use."""
    if database is None:
        return TokenCatalog(tokens_path(data_dir))
    from plantwire_platform.auth.postgres_auth import PostgresTokenCatalog  # asyncpg: when configured

    return PostgresTokenCatalog.open(database)
