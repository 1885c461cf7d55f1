"""The running platform's view of the token catalog: every check from memory, writes in a thread.

`AsyncTokenCatalog` loads every token's digest once, answers `verify` (a SHA-256 and a dict look-up,
about a microsecond) and `identity_for` without touching SQLite, and keeps itself current with a
background loop: every `refresh_s` it asks the catalog (in a thread) whether another process, such
as `plantwire token revoke` or another replica on the same PostgreSQL schema, changed it
(`data_version`), and reloads if so. A token revoked through this process's API stops working at
once; one revoked from another process within `refresh_s`.

`last_used` is kept in memory and written in one batch every `touch_interval_s` (and on close),
so a busy token costs one UPDATE a minute, not one per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Final

from plantwire.logs import get_logger
from plantwire_platform.auth.admin_token import ensure_admin_token
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.auth.token_catalog import (
    AuthStorageUnavailable,
    TokenCatalog,
    TokenCatalogBackend,
    TokenInfo,
)
from plantwire_platform.auth.tokens import Identity, looks_like_token, same_digest, token_digest

log = get_logger(__name__)

REFRESH_S: Final = 1.0
TOUCH_INTERVAL_S: Final = 60.0


class AsyncTokenCatalog:
    """Build with `token_service(path)` or `catalog_service(open_catalog)`."""

    def __init__(self, catalog: TokenCatalogBackend) -> None:
        self.catalog = catalog
        self._by_digest: dict[bytes, tuple[bytes, Identity]] = {}
        self._version = -1
        self._last_used: dict[str, int] = {}
        self._write_lock = asyncio.Lock()

    # --- checks, from memory --------------------------------------------------------------------

    def verify(self, secret: str) -> Identity | None:
        """The token's identity, or None. Records its use for the next `last_used` batch."""
        if not looks_like_token(secret):
            return None
        return self.identity_for(token_digest(secret))

    def identity_for(self, digest: bytes) -> Identity | None:
        """The current identity of a token digest (sessions keep the digest of their token)."""
        entry = self._by_digest.get(digest)
        if entry is None or not same_digest(entry[0], digest):
            return None
        identity = entry[1]
        self._last_used[identity.name] = int(time.time())
        return identity

    # --- changes, in a thread -------------------------------------------------------------------

    async def create(self, name: str, scope: Scope) -> str:
        async with self._write_lock:
            secret = await asyncio.to_thread(self.catalog.create, name, scope)
            await self.reload()
        return secret

    async def revoke(self, name: str) -> None:
        async with self._write_lock:
            await asyncio.to_thread(self.catalog.revoke, name)
            await self.reload()

    async def list(self) -> list[TokenInfo]:
        await self.flush_last_used()
        return await asyncio.to_thread(self.catalog.list)

    async def ensure_admin_token(self, path: Path) -> str:
        async with self._write_lock:
            secret = await asyncio.to_thread(ensure_admin_token, self.catalog, path)
            await self.reload()
        return secret

    async def reload(self) -> None:
        version, tokens = await asyncio.to_thread(self._read_all)
        self._version, self._by_digest = version, tokens

    def _read_all(self) -> tuple[int, dict[bytes, tuple[bytes, Identity]]]:
        version = self.catalog.data_version()  # first: a commit in between makes the next refresh reload
        tokens = self.catalog.identities()
        return version, {d: (d, identity) for d, identity in tokens.items()}

    async def refresh_if_changed(self) -> None:
        if await asyncio.to_thread(self.catalog.data_version) != self._version:
            await self.reload()
            log.info("tokens_reloaded", tokens=len(self._by_digest))

    async def flush_last_used(self) -> None:
        pending, self._last_used = self._last_used, {}
        if pending:
            await asyncio.to_thread(self.catalog.touch, pending)

    async def maintain(
        self, refresh_s: float = REFRESH_S, touch_interval_s: float = TOUCH_INTERVAL_S
    ) -> None:
        """Run until cancelled: notice other writers, write `last_used` batches."""
        next_touch = time.monotonic() + touch_interval_s
        while True:
            await asyncio.sleep(refresh_s)
            try:
                await self.refresh_if_changed()
                if time.monotonic() >= next_touch:
                    next_touch = time.monotonic() + touch_interval_s
                    await self.flush_last_used()
            except (sqlite3.Error, AuthStorageUnavailable) as err:  # keep the tokens we know
                log.warning("token_catalog_unreadable", where=self.catalog.where, error=str(err))


def token_service(
    path: Path, refresh_s: float = REFRESH_S, touch_interval_s: float = TOUCH_INTERVAL_S
) -> contextlib.AbstractAsyncContextManager[AsyncTokenCatalog]:
    """The SQLite catalog at `path`, loaded and kept current until the context exits."""
    return catalog_service(lambda: TokenCatalog(path), refresh_s, touch_interval_s)


@contextlib.asynccontextmanager
async def catalog_service(
    open_catalog: Callable[[], TokenCatalogBackend],
    refresh_s: float = REFRESH_S,
    touch_interval_s: float = TOUCH_INTERVAL_S,
) -> AsyncIterator[AsyncTokenCatalog]:
    """The catalog `open_catalog` makes (in a thread), loaded and kept current until the context
    exits, then closed."""
    catalog = await asyncio.to_thread(open_catalog)
    try:
        tokens = AsyncTokenCatalog(catalog)
        await tokens.reload()
        async with asyncio.TaskGroup() as tg:
            loop = tg.create_task(tokens.maintain(refresh_s, touch_interval_s), name="pw-token-catalog")
            try:
                yield tokens
            finally:
                loop.cancel()
        await tokens.flush_last_used()
    finally:
        await asyncio.to_thread(catalog.close)
