"""What sharing tokens and sessions through PostgreSQL costs a replica, and how fast a change spreads.

    .venv/bin/python bench/auth_replicas.py [--lookups 2000] [--revocations 10]

On a PostgreSQL database of its own (made at 127.0.0.1:5432 and dropped at the end), with two
`PostgresAuth` pools standing for two replicas. Prints, in µs per call (median and p99):
- a session lookup on the database (`PostgresSessions.get`, cache off), the same with the 1 s
  positive cache (what a dashboard's burst of requests pays), and the in-memory store's, for scale;
- opening a session, and a login link issued on one replica and redeemed on the other;
- one poll of the token catalog's change counter (`data_version`, what each replica does every second);
and, in seconds, how long a token revoked through replica B is still accepted by replica A
(`AsyncTokenCatalog` with the platform's refresh_s of 1 s): expected uniform in 0 to ~1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
from pydantic import SecretStr

from plantwire_platform.auth.auth_database import AuthDatabase
from plantwire_platform.auth.postgres_auth import PostgresAuth, PostgresTokenCatalog
from plantwire_platform.auth.postgres_sessions import PostgresLinks, PostgresSessions
from plantwire_platform.auth.scopes import Scope
from plantwire_platform.auth.sessions import SessionStore
from plantwire_platform.auth.token_service import REFRESH_S, catalog_service

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def timed(n: int, call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """Median and p99 of `n` calls, in µs."""
    took = []
    for _ in range(n):
        t = time.perf_counter()
        await call()
        took.append((time.perf_counter() - t) * 1e6)
    took.sort()
    return statistics.median(took), took[int(len(took) * 0.99) - 1]


def line(what: str, figures: tuple[float, float]) -> None:
    print(f"{what:<58} median {figures[0]:8.1f} µs   p99 {figures[1]:8.1f} µs")


async def run(database: AuthDatabase, lookups: int, revocations: int) -> None:
    a = await asyncio.to_thread(PostgresAuth.open, database)
    b = await asyncio.to_thread(PostgresAuth.open, database)
    try:
        uncached = PostgresSessions(a, 3600, 1000, cache_s=0)
        cached = PostgresSessions(a, 3600, 1000)
        session = await uncached.open(b"d" * 32)
        line("session lookup on PostgreSQL (cache off)", await timed(lookups, lambda: uncached.get(session)))
        line("session lookup with the 1 s positive cache", await timed(lookups, lambda: cached.get(session)))
        memory = SessionStore(3600, 1000)
        in_memory = memory.open(b"d" * 32)

        async def memory_get() -> object:
            return memory.get(in_memory)

        line("session lookup in memory (SQLite/InfluxDB stores)", await timed(lookups, memory_get))
        opening = await timed(lookups // 10, lambda: uncached.open(b"e" * 32))
        line("open a session (purge, insert, trim)", opening)
        on_a, on_b = PostgresLinks(a, 300, 100), PostgresLinks(b, 300, 100)

        async def link_round_trip() -> object:
            return await on_b.redeem(await on_a.issue(b"f" * 32))

        line("login link issued on A, redeemed on B", await timed(lookups // 10, link_round_trip))
        catalog_a, catalog_b = PostgresTokenCatalog(a), PostgresTokenCatalog(b)
        line("poll of the change counter (data_version)", await timed(
            lookups // 10, lambda: asyncio.to_thread(catalog_a.data_version)
        ))  # fmt: skip
        still_accepted = []
        async with catalog_service(lambda: catalog_a) as tokens:
            for i in range(revocations):
                secret = await tokens.create(f"bench-{i}", Scope.READ)
                await asyncio.sleep(REFRESH_S * (i % 4) / 4)  # revocations at spread phases of the poll
                revoked_at = time.perf_counter()
                await asyncio.to_thread(catalog_b.revoke, f"bench-{i}")
                while tokens.verify(secret) is not None:
                    await asyncio.sleep(0.005)
                still_accepted.append(time.perf_counter() - revoked_at)
        still_accepted.sort()
        print(
            f"revoked on B, still accepted on A for: median {statistics.median(still_accepted):.2f} s, "
            f"max {still_accepted[-1]:.2f} s (refresh_s {REFRESH_S} s, {revocations} revocations)"
        )
    finally:
        await asyncio.to_thread(a.close)
        await asyncio.to_thread(b.close)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lookups", type=int, default=2000)
    ap.add_argument("--revocations", type=int, default=10)
    args = ap.parse_args()
    name = "plantwire_bench_" + uuid.uuid4().hex[:8]
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
        asyncio.run(run(AuthDatabase(SecretStr(dsn), "public"), args.lookups, args.revocations))
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
