"""The token catalog's contract, on both implementations: SQLite (`<data_dir>/auth.sqlite`) and
PostgreSQL (the store's schema, shared by replicas); then what only the shared one promises:
sessions and login links in the database, and the admin token file on replicas.

Real parts: SQLite files in tmp_path, the PostgreSQL of this test run (a schema per test). Two
"processes" on one catalog are two catalog objects with their own connections.
"""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from plantwire_platform.auth.admin_token import ADMIN_TOKEN_FILE, AdminTokenElsewhere, ensure_admin_token
from plantwire_platform.auth.api_auth import ApiAuth, SharedSecrets
from plantwire_platform.auth.auth_database import AuthDatabase
from plantwire_platform.auth.auth_settings import AuthSettings
from plantwire_platform.auth.postgres_auth import PostgresAuth, PostgresTokenCatalog
from plantwire_platform.auth.postgres_sessions import PostgresLinks, PostgresSecrets, PostgresSessions
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.auth.sessions import secret_key
from plantwire_platform.auth.token_catalog import (
    AuthStorageUnavailable,
    DuplicateToken,
    TokenCatalog,
    TokenCatalogBackend,
    UnknownToken,
    tokens_path,
)
from plantwire_platform.auth.token_service import catalog_service
from plantwire_platform.auth.tokens import Identity, InvalidTokenName, token_digest
from plantwire_platform.store.model import StoreError
from plantwire_platform.store.postgresql.store import PostgresSettings, PostgresStore
from plantwire_platform.web.auth_middleware import SESSION_COOKIE, install
from plantwire_platform.web.errors import error_middleware
from plantwire_platform.web.login_routes import add_login_routes

Opener = Callable[[], TokenCatalogBackend]


@pytest.fixture
def database(postgres_dsn: str, postgres_schema: str) -> AuthDatabase:
    return AuthDatabase(SecretStr(postgres_dsn), postgres_schema, request_timeout_s=10, startup_timeout_s=10)


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens another connection to one catalog each call (closed at the end)."""
    opened: list[TokenCatalogBackend] = []

    def open_one() -> TokenCatalogBackend:
        if request.param == "sqlite":
            catalog: TokenCatalogBackend = TokenCatalog(tokens_path(tmp_path))
        else:
            catalog = PostgresTokenCatalog.open(request.getfixturevalue("database"))
        opened.append(catalog)
        return catalog

    yield open_one
    for catalog in opened:
        catalog.close()


def test_create_verify_list_revoke(opener: Opener) -> None:
    catalog = opener()
    secret = catalog.create("grafana", Scope.READ)
    assert catalog.verify(secret) == Identity("grafana", Scope.READ)
    assert catalog.identities() == {token_digest(secret): Identity("grafana", Scope.READ)}
    with pytest.raises(DuplicateToken):
        catalog.create("grafana", Scope.ADMIN)
    with pytest.raises(InvalidTokenName):
        catalog.create("../x", Scope.READ)
    [info] = catalog.list()
    assert (info.name, info.scope, info.last_used) == ("grafana", Scope.READ, None)
    assert secret not in repr(info.as_json())
    catalog.revoke("grafana")
    assert catalog.verify(secret) is None and catalog.identities() == {}
    with pytest.raises(UnknownToken):
        catalog.revoke("grafana")
    assert catalog.verify("pw_" + "x" * 43) is None and catalog.verify("junk") is None


def test_another_writer_moves_the_data_version(opener: Opener) -> None:
    mine, other = opener(), opener()
    before = mine.data_version()
    secret = other.create("cli-made", Scope.OPERATE)
    created = mine.data_version()
    assert created != before
    assert mine.verify(secret) == Identity("cli-made", Scope.OPERATE)
    other.revoke("cli-made")
    assert mine.data_version() != created
    assert mine.verify(secret) is None


def test_touch_keeps_the_latest_use(opener: Opener) -> None:
    catalog = opener()
    catalog.create("a", Scope.READ)
    catalog.create("b", Scope.READ)
    catalog.touch({"a": 200, "b": 100, "gone": 5})
    catalog.touch({"a": 150})  # older than what is recorded: kept at 200
    catalog.touch({})
    assert {t.name: t.last_used for t in catalog.list()} == {"a": 200, "b": 100}


def test_where_names_the_place_never_the_dsn(opener: Opener, postgres_dsn: str) -> None:
    catalog = opener()
    assert postgres_dsn not in catalog.where and "postgres@" not in catalog.where
    assert catalog.shared is isinstance(catalog, PostgresTokenCatalog)


async def test_a_running_catalog_sees_another_writers_revocation(opener: Opener) -> None:
    other = await asyncio.to_thread(opener)
    secret = await asyncio.to_thread(other.create, "reader", Scope.READ)
    async with asyncio.timeout(10), catalog_service(opener, refresh_s=0.05, touch_interval_s=0.05) as tokens:
        assert tokens.verify(secret) == Identity("reader", Scope.READ)  # from memory
        await asyncio.to_thread(other.revoke, "reader")
        while tokens.verify(secret) is not None:  # within refresh_s (the test's timeout bounds it)
            await asyncio.sleep(0.02)
        made = await tokens.create("api-made", Scope.ADMIN)  # through this process: at once
        assert tokens.verify(made) is not None
    assert await asyncio.to_thread(other.verify, made) == Identity("api-made", Scope.ADMIN)


# --- only the shared (PostgreSQL) catalog -------------------------------------------------------


def test_touch_is_not_a_change_of_tokens(database: AuthDatabase) -> None:
    catalog = PostgresTokenCatalog.open(database)
    try:
        catalog.create("busy", Scope.READ)
        version = catalog.data_version()
        catalog.touch({"busy": 1_700_000_000})
        assert catalog.data_version() == version  # last_used batches never make replicas reload
    finally:
        catalog.close()


async def test_a_change_by_hand_in_sql_moves_the_version_too(database: AuthDatabase) -> None:
    catalog = await asyncio.to_thread(PostgresTokenCatalog.open, database)
    try:
        secret = await asyncio.to_thread(catalog.create, "by-hand", Scope.ADMIN)
        version = await asyncio.to_thread(catalog.data_version)
        conn = await asyncpg.connect(database.dsn.get_secret_value())
        try:  # another schema on the search path: the trigger still finds its counter
            await conn.execute(f"UPDATE \"{database.schema}\".api_tokens SET scope = 'read'")
        finally:
            await conn.close()
        assert await asyncio.to_thread(catalog.data_version) != version
        assert await asyncio.to_thread(catalog.verify, secret) == Identity("by-hand", Scope.READ)
    finally:
        await asyncio.to_thread(catalog.close)


@pytest.fixture
async def replicas(database: AuthDatabase) -> AsyncIterator[tuple[PostgresAuth, PostgresAuth]]:
    """Two connection pools on one schema: what two replicas hold."""
    a = await asyncio.to_thread(PostgresAuth.open, database)
    b = await asyncio.to_thread(PostgresAuth.open, database)
    try:
        yield a, b
    finally:
        await asyncio.to_thread(a.close)
        await asyncio.to_thread(b.close)


async def test_sessions_are_shared_and_logout_ends_them_everywhere(
    replicas: tuple[PostgresAuth, PostgresAuth],
) -> None:
    a = PostgresSessions(replicas[0], ttl_s=3600, max_entries=10)
    b = PostgresSessions(replicas[1], ttl_s=3600, max_entries=10, cache_s=0)
    async with asyncio.timeout(10):
        session_id = await a.open(b"d" * 32)
        found = await b.get(session_id)
        assert found is not None and found.token_digest == b"d" * 32
        assert await a.get(session_id) is not None  # and now cached on a
        await a.close(session_id)
        assert await b.get(session_id) is None
        assert await a.get(session_id) is None  # closed here: out of the cache at once
        assert await b.get("not-a-session") is None


async def test_rows_are_keyed_by_digest_never_the_secret(
    replicas: tuple[PostgresAuth, PostgresAuth], database: AuthDatabase
) -> None:
    sessions = PostgresSessions(replicas[0], ttl_s=3600, max_entries=10)
    links = PostgresLinks(replicas[0], ttl_s=300, max_entries=10)
    async with asyncio.timeout(10):
        session_id = await sessions.open(b"s" * 32)
        nonce = await links.issue(b"l" * 32)
        conn = await asyncpg.connect(
            database.dsn.get_secret_value(), server_settings={"search_path": database.schema}
        )
        try:
            rows = await conn.fetch("SELECT kind, key, token_digest FROM auth_secrets ORDER BY kind")
        finally:
            await conn.close()
    assert [(r["kind"], bytes(r["key"])) for r in rows] == [
        ("login_link", secret_key(nonce)),
        ("session", secret_key(session_id)),
    ]
    dump = repr([tuple(r) for r in rows])
    assert session_id.encode() not in dump.encode() and nonce not in dump


async def test_a_login_link_works_once_on_any_replica(replicas: tuple[PostgresAuth, PostgresAuth]) -> None:
    on_a = PostgresLinks(replicas[0], ttl_s=300, max_entries=10)
    on_b = PostgresLinks(replicas[1], ttl_s=300, max_entries=10)
    async with asyncio.timeout(10):
        nonce = await on_a.issue(b"t" * 32)
        results = await asyncio.gather(on_b.redeem(nonce), on_a.redeem(nonce), on_b.redeem(nonce))
    assert sorted(results, key=lambda r: r is None) == [b"t" * 32, None, None]  # exactly one wins


async def test_expired_rows_are_refused_and_purged_and_the_oldest_go_when_full(
    replicas: tuple[PostgresAuth, PostgresAuth],
) -> None:
    db = replicas[0]
    expired = PostgresSecrets(db, "session", ttl_s=-1, max_entries=10)  # expired when made
    live = PostgresSecrets(db, "session", ttl_s=3600, max_entries=2)
    async with asyncio.timeout(10):
        old = await expired.issue(b"x" * 32)
        assert await live.get(old) is None and await live.pop(old) is None
        old = await expired.issue(b"x" * 32)
        ids = [await live.issue(bytes([i]) * 32) for i in range(3)]  # purges the expired, keeps 2
        count = await db.call(db.pool.fetchval("SELECT count(*) FROM auth_secrets"))
        assert count == 2
        assert await live.get(ids[0]) is None
        assert [await live.get(i) is not None for i in ids[1:]] == [True, True]
        found = await live.get(ids[2])
        assert found is not None and found[0] == bytes([2]) * 32 and 3590 < found[1] <= 3600


def test_admin_token_file_on_replicas(database: AuthDatabase, tmp_path: Path) -> None:
    first, second = PostgresTokenCatalog.open(database), PostgresTokenCatalog.open(database)
    try:
        path_a, path_b = tmp_path / "a" / ADMIN_TOKEN_FILE, tmp_path / "b" / ADMIN_TOKEN_FILE
        secret = ensure_admin_token(first, path_a)  # the first replica to start makes it
        assert ensure_admin_token(first, path_a) == secret  # kept while valid
        with pytest.raises(AdminTokenElsewhere, match="data dir of the replica that made it") as refused:
            ensure_admin_token(second, path_b)  # another data dir: the token is not replaced
        assert secret not in str(refused.value) and not path_b.exists()
        assert second.verify(secret) == Identity("demo-admin", Scope.ADMIN)  # the first file still works
        first.revoke("demo-admin")
        replaced = ensure_admin_token(second, path_b)  # gone from the catalog: made again, here
        assert replaced != secret and first.verify(replaced) is not None
    finally:
        first.close()
        second.close()


def _open_at_once(makers: list[Callable[[], PostgresStore | PostgresAuth]]) -> list[str]:
    """Run every maker in its own thread, all released at one moment; the errors they raised."""
    start = threading.Barrier(len(makers))
    opened: list[PostgresStore | PostgresAuth] = []
    failed: list[str] = []

    def open_one(what: Callable[[], PostgresStore | PostgresAuth]) -> None:
        start.wait(10)
        try:
            opened.append(what())
        except (StoreError, AuthStorageUnavailable) as err:
            failed.append(str(err))

    threads = [threading.Thread(target=open_one, args=(m,)) for m in makers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for done in opened:
        done.close()
    return failed if len(opened) + len(failed) == len(makers) else [*failed, "a maker hung"]


def test_replicas_starting_at_once_on_a_new_schema_all_open(postgres_dsn: str) -> None:
    """Stores and auth tables of several replicas created at the same moment: none collides on the
    schema (before the fix, `CREATE SCHEMA IF NOT EXISTS` failed with a duplicate key 9 times in 10)."""
    for _ in range(3):
        schema = "t_" + uuid.uuid4().hex[:12]
        database = AuthDatabase(SecretStr(postgres_dsn), schema, request_timeout_s=10, startup_timeout_s=10)
        settings = PostgresSettings(dsn=SecretStr(postgres_dsn), schema_name=schema, pool_max=2)
        store = functools.partial(PostgresStore.open, settings, merge_every_s=None)
        auth = functools.partial(PostgresAuth.open, database)
        assert _open_at_once([store, store, auth, auth]) == []


def _token_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "plantwire", "--log-format", "json", "--log-level", "debug", "token", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_the_cli_uses_the_shared_catalog_when_the_settings_select_postgresql(
    database: AuthDatabase, tmp_path: Path
) -> None:
    dsn = database.dsn.get_secret_value().replace("postgres@", "postgres:s3cret-pw@")  # trust: ignored
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PLANTWIRE_")}
    env = {
        **clean,
        "PLANTWIRE_STORE__BACKEND": "postgresql",
        "PLANTWIRE_STORE__POSTGRESQL__DSN": dsn,
        "PLANTWIRE_STORE__POSTGRESQL__SCHEMA_NAME": database.schema,
        "PLANTWIRE_STORE__PATH": str(tmp_path / "data" / "plantwire.sqlite"),
    }
    made = _token_cli(env, "create", "--name", "cli-made", "--scope", "operate")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.splitlines()[-1]
    catalog = PostgresTokenCatalog.open(database)
    try:
        assert catalog.verify(secret) == Identity("cli-made", Scope.OPERATE)
    finally:
        catalog.close()
    assert not tokens_path(tmp_path / "data").exists()  # nothing in the data dir
    refused = _token_cli(env, "list", "--data-dir", str(tmp_path))
    assert refused.returncode == 1 and "leave out --data-dir" in refused.stderr
    for done in (made, refused):
        assert "s3cret-pw" not in done.stdout + done.stderr


async def test_the_web_edge_answers_503_when_shared_sessions_cannot_be_checked(
    replicas: tuple[PostgresAuth, PostgresAuth],
) -> None:
    live, gone = replicas
    sessions = PostgresSessions(live, ttl_s=3600, max_entries=10)
    broken = SharedSecrets(PostgresSessions(gone, 3600, 10), PostgresLinks(gone, 300, 10))
    async with asyncio.timeout(20), catalog_service(lambda: PostgresTokenCatalog(live)) as tokens:
        secret = await tokens.create("viewer", Scope.READ)
        session_id = await sessions.open(token_digest(secret))
        await asyncio.to_thread(gone.close)  # this replica's database connection is down
        app = web.Application(middlewares=[error_middleware])
        add_login_routes(app)
        install(app, ApiAuth(tokens, AuthSettings(), frozenset(), shared=broken))
        async with TestClient(TestServer(app)) as client:
            resp = await client.get("/api/whoami", headers={"Cookie": f"{SESSION_COOKIE}={session_id}"})
            body = await resp.json()
            assert (resp.status, body["error"]["code"]) == (503, "auth_unavailable")
            assert SESSION_COOKIE not in resp.cookies  # not told to forget the cookie
            resp = await client.get("/api/whoami", headers={"Authorization": f"Bearer {secret}"})
            assert resp.status == 200  # tokens are checked from memory: still fine
