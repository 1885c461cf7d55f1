"""Tokens, sessions and login links in the store's PostgreSQL schema, shared by every replica.

`PostgresAuth` owns a small asyncpg pool on a private loop thread (`plantwire.loop_thread`, as the
PostgreSQL store does) and creates the auth tables beside the store's:

- ``api_tokens (name, scope, digest, created, last_used)``: the catalog, digests only;
- ``api_token_changes (id = 1, version)``: a counter that a statement trigger on ``api_tokens`` bumps
  in the same transaction as any insert, delete or change of name, scope or digest (not of
  ``last_used``). Each replica polls it (`data_version`) and reloads its tokens when it moved, so a
  token revoked on one replica, by the CLI or by hand in SQL stops working on all within refresh_s;
- ``auth_secrets (kind, key, token_digest, created, expires)``: sessions and one-time login links,
  keyed by the SHA-256 of their secret (never the secret), expiring by the database's clock.

`PostgresTokenCatalog` is the blocking `TokenCatalogBackend` (the CLI and `AsyncTokenCatalog` use it);
postgres_sessions.py holds the async session and link stores on the same pool. Errors of asyncpg
and of the connection become `AuthStorageUnavailable`; the DSN is never logged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Mapping
from typing import Any, Final, TypeVar

import asyncpg

from plantwire.logs import get_logger
from plantwire.loop_thread import LoopThread
from plantwire_platform.auth.auth_database import AuthDatabase
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.auth.token_catalog import (
    AuthStorageUnavailable,
    DuplicateToken,
    TokenInfo,
    UnknownToken,
)
from plantwire_platform.auth.tokens import Identity, check_name, looks_like_token, new_token, same_digest
from plantwire_platform.auth.tokens import token_digest as digest_of

log = get_logger(__name__)
T = TypeVar("T")

POOL_MAX: Final = 4
_RETRY_S: Final = 0.2
_DDL_LOCK: Final = 0x706C616E
"""The advisory lock of the store's DDL (store/postgresql/schema.py), so that the auth tables, the CLI
and the store never create one schema at the same time."""

TABLES: Final = """
CREATE TABLE IF NOT EXISTS api_tokens (
    name      text PRIMARY KEY,
    scope     text NOT NULL CHECK (scope IN ('read', 'operate', 'admin')),
    digest    bytea NOT NULL UNIQUE,
    created   bigint NOT NULL,
    last_used bigint
);
CREATE TABLE IF NOT EXISTS api_token_changes (
    id      integer PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO api_token_changes (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
CREATE OR REPLACE FUNCTION api_tokens_changed() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE api_token_changes SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER api_tokens_changed
    AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF name, scope, digest ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION api_tokens_changed();
CREATE TABLE IF NOT EXISTS auth_secrets (
    kind         text NOT NULL CHECK (kind IN ('session', 'login_link')),
    key          bytea PRIMARY KEY,
    token_digest bytea NOT NULL,
    created      timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires      timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS auth_secrets_age ON auth_secrets (kind, created);
CREATE INDEX IF NOT EXISTS auth_secrets_expiry ON auth_secrets (expires);
"""

_DB_ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


def describe(err: BaseException) -> str:
    """One line about a database error, without the DSN."""
    if isinstance(err, asyncpg.PostgresError):
        return f"PostgreSQL: {err.sqlstate} {type(err).__name__}"
    if isinstance(err, TimeoutError):
        return "PostgreSQL did not answer in time"
    return f"PostgreSQL: {type(err).__name__}"


class PostgresAuth:
    """The auth tables' connection pool. Open with `PostgresAuth.open(database)`; thread-safe."""

    def __init__(self, database: AuthDatabase, loop: LoopThread) -> None:
        self.database = database
        self._loop = loop
        self._pool: asyncpg.Pool | None = None
        self._closed = False

    @classmethod
    def open(cls, database: AuthDatabase) -> PostgresAuth:
        """Connect (waiting up to `startup_timeout_s`), create the tables if missing (blocking)."""
        auth = cls(database, LoopThread("postgres-auth"))
        try:
            auth._loop.run(auth._start(), database.startup_timeout_s + database.request_timeout_s + 5)
        except TimeoutError as err:
            auth.close()
            raise AuthStorageUnavailable(f"cannot open the auth tables: {describe(err)}") from err
        except BaseException:
            auth.close()
            raise
        return auth

    async def _start(self) -> None:
        db = self.database
        deadline = time.monotonic() + db.startup_timeout_s
        while True:
            try:
                self._pool = await asyncpg.create_pool(
                    db.dsn.get_secret_value(),
                    min_size=1,
                    max_size=POOL_MAX,
                    command_timeout=db.request_timeout_s,
                    server_settings={"search_path": db.schema, "application_name": "plantwire-auth"},
                )
                break
            except (OSError, asyncpg.CannotConnectNowError) as err:
                if time.monotonic() >= deadline:
                    raise AuthStorageUnavailable(f"cannot reach PostgreSQL: {describe(err)}") from err
                await asyncio.sleep(_RETRY_S)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as err:
                raise AuthStorageUnavailable(f"cannot open the auth tables: {describe(err)}") from err
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _DDL_LOCK)
                # A query, not only IF NOT EXISTS: that may check a stale catalog cache (schema.py).
                if not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", db.schema):
                    await conn.execute(f'CREATE SCHEMA "{db.schema}"')
                await conn.execute(f'SET LOCAL search_path TO "{db.schema}"')
                await conn.execute(TABLES)
        except _DB_ERRORS as err:
            raise AuthStorageUnavailable(f"cannot create the auth tables: {describe(err)}") from err

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "opened by PostgresAuth.open"
        return self._pool

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the pool's loop and wait (blocking callers: the catalog, the CLI)."""
        if self._closed:
            coro.close()
            raise AuthStorageUnavailable("the auth tables are closed")
        try:
            return self._loop.run(coro, self.database.request_timeout_s + 5)
        except _DB_ERRORS as err:
            raise AuthStorageUnavailable(f"auth tables: {describe(err)}") from err

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the pool's loop and await it from another loop (the platform's)."""
        if self._closed:
            coro.close()
            raise AuthStorageUnavailable("the auth tables are closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop.loop)
        try:
            async with asyncio.timeout(self.database.request_timeout_s + 5):
                return await asyncio.wrap_future(future)
        except _DB_ERRORS as err:
            raise AuthStorageUnavailable(f"auth tables: {describe(err)}") from err

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pool is not None:
            try:
                self._loop.run(self._pool.close(), 10)
            except _DB_ERRORS as err:
                log.warning("postgres_auth_close_failed", error=describe(err))
        self._loop.stop()


class PostgresTokenCatalog:
    """`TokenCatalogBackend` on the ``api_tokens`` table of a `PostgresAuth`, shared by replicas."""

    shared: Final = True

    def __init__(self, auth: PostgresAuth, owns: bool = False) -> None:
        self.auth = auth
        self._owns = owns

    @classmethod
    def open(cls, database: AuthDatabase) -> PostgresTokenCatalog:
        """A catalog with a pool of its own (the CLI's); `close` closes it."""
        return cls(PostgresAuth.open(database), owns=True)

    @property
    def where(self) -> str:
        return f"PostgreSQL schema {self.auth.database.schema!r}"

    def close(self) -> None:
        if self._owns:
            self.auth.close()

    def create(self, name: str, scope: Scope) -> str:
        check_name(name)
        secret = new_token()
        try:
            self.auth.run(
                self.auth.pool.execute(
                    "INSERT INTO api_tokens (name, scope, digest, created) VALUES ($1, $2, $3, $4)",
                    name,
                    scope.value,
                    digest_of(secret),
                    int(time.time()),
                )
            )
        except AuthStorageUnavailable as err:
            if isinstance(err.__cause__, asyncpg.UniqueViolationError):
                raise DuplicateToken(f"a token named {name!r} exists; revoke it first") from None
            raise
        log.info("token_created", name=name, scope=scope.value)
        return secret

    def list(self) -> list[TokenInfo]:
        rows = self.auth.run(
            self.auth.pool.fetch("SELECT name, scope, created, last_used FROM api_tokens ORDER BY name")
        )
        return [TokenInfo(r["name"], Scope(r["scope"]), r["created"], r["last_used"]) for r in rows]

    def revoke(self, name: str) -> None:
        status = self.auth.run(self.auth.pool.execute("DELETE FROM api_tokens WHERE name = $1", name))
        if status == "DELETE 0":
            raise UnknownToken(f"no token is named {name!r}; `plantwire token list` lists them")
        log.info("token_revoked", name=name)

    def verify(self, secret: str) -> Identity | None:
        if not looks_like_token(secret):
            return None
        digest = digest_of(secret)
        row = self.auth.run(
            self.auth.pool.fetchrow("SELECT name, scope, digest FROM api_tokens WHERE digest = $1", digest)
        )
        if row is None or not same_digest(bytes(row["digest"]), digest):
            return None
        return Identity(row["name"], Scope(row["scope"]))

    def identities(self) -> dict[bytes, Identity]:
        rows = self.auth.run(self.auth.pool.fetch("SELECT name, scope, digest FROM api_tokens"))
        return {bytes(r["digest"]): Identity(r["name"], Scope(r["scope"])) for r in rows}

    def data_version(self) -> int:
        """The change counter: moves with every change of a token by anyone (replica, CLI, SQL)."""
        return int(
            self.auth.run(self.auth.pool.fetchval("SELECT version FROM api_token_changes WHERE id = 1"))
        )

    def touch(self, last_used: Mapping[str, int]) -> None:
        if not last_used:
            return
        names, times = list(last_used), list(last_used.values())
        self.auth.run(
            self.auth.pool.execute(
                "UPDATE api_tokens t SET last_used = greatest(coalesce(t.last_used, 0), u.ts) "
                "FROM unnest($1::text[], $2::bigint[]) AS u(name, ts) WHERE t.name = u.name",
                names,
                times,
            )
        )
