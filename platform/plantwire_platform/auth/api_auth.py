"""Everything the web edge needs to decide who a request is, as one object the app holds.

`ApiAuth` joins the token catalog, the browser sessions, the one-time login links, the failure
limiter and their counters; the aiohttp middleware (web/auth_middleware.py) only translates
between HTTP and these calls.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from plantwire_platform.auth.auth_settings import AuthSettings
from plantwire_platform.auth.auth_stats import AuthStats
from plantwire_platform.auth.failure_limiter import FailureLimiter
from plantwire_platform.auth.log_throttle import LogThrottle
from plantwire_platform.auth.sessions import LoginLinks, SessionStore
from plantwire_platform.auth.token_catalog import tokens_path
from plantwire_platform.auth.token_service import AsyncTokenCatalog, token_service
from plantwire_platform.auth.tokens import Identity, looks_like_token, token_digest


@dataclass
class ApiAuth:
    tokens: AsyncTokenCatalog
    settings: AuthSettings
    origins: frozenset[str]
    """Origins allowed to send state-changing requests and to open WebSockets."""
    stats: AuthStats = field(default_factory=AuthStats)
    sessions: SessionStore = field(init=False)
    links: LoginLinks = field(init=False)
    limiter: FailureLimiter = field(init=False)
    log_throttle: LogThrottle = field(default_factory=LogThrottle)
    """Refusals that need no credential (foreign origins) are logged once a minute per origin."""

    def __post_init__(self) -> None:
        s = self.settings
        self.sessions = SessionStore(s.session_ttl_s, s.max_sessions)
        self.links = LoginLinks(s.login_link_ttl_s, max_entries=100)
        self.limiter = FailureLimiter(
            s.failure_burst, s.failure_refill_s, s.failure_max_addresses, self.stats
        )

    def by_token(self, secret: str) -> Identity | None:
        return self.tokens.verify(secret)

    def by_session(self, session_id: str) -> Identity | None:
        """The session's identity while both the session and the token it was opened with exist."""
        session = self.sessions.get(session_id)
        return None if session is None else self.tokens.identity_for(session.token_digest)

    def log_in(self, secret: str) -> tuple[str, Identity] | None:
        """A new session id for a valid token, with its identity."""
        identity = self.by_token(secret)
        if identity is None:
            return None
        return self.sessions.open(token_digest(secret)), identity

    def link_for(self, secret: str) -> str | None:
        """A one-time login nonce standing for this token (None if the token is not valid)."""
        if not looks_like_token(secret) or self.by_token(secret) is None:
            return None
        return self.links.issue(token_digest(secret))

    def link_for_digest(self, digest: bytes) -> str:
        return self.links.issue(digest)

    def redeem_link(self, nonce: str) -> tuple[str, Identity] | None:
        digest = self.links.redeem(nonce)
        identity = None if digest is None else self.tokens.identity_for(digest)
        if digest is None or identity is None:
            return None
        return self.sessions.open(digest), identity


@contextlib.asynccontextmanager
async def api_auth_running(
    settings: AuthSettings, data_dir: Path, http_host: str, http_port: int
) -> AsyncIterator[ApiAuth]:
    """The platform's auth, on the token catalog in `data_dir`, kept current until the context exits.

    `data_dir` is the folder of the store file (``settings.store.path.parent``); the allowed origins
    default to the platform's own HTTP address.
    """
    async with token_service(tokens_path(data_dir)) as tokens:
        yield ApiAuth(tokens, settings, settings.origins(http_host, http_port))
