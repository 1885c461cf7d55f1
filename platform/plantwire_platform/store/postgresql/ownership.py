"""Device ownership in PostgreSQL: the `device_owners` table of `store/ownership_table.py`, in
PostgreSQL's dialect (its own DDL step, so it merges beside other schema changes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import asyncpg

from plantwire.wire import now_us
from plantwire_platform.store.ownership_table import APPS_GATEWAY

_OWNERS_LOCK: Final = 0x706C6F77
OWNERS_DDL: Final = """
CREATE TABLE IF NOT EXISTS device_owners (
    device  text PRIMARY KEY,
    gateway text NOT NULL,
    since   bigint NOT NULL
)
"""
_CLAIM_MANY: Final = f"""
INSERT INTO device_owners (device, gateway, since)
SELECT u.device,
       coalesce((SELECT gateway FROM devices WHERE id = u.device AND gateway <> '{APPS_GATEWAY}'), u.gateway),
       $3
FROM unnest($1::text[], $2::text[]) AS u(device, gateway)
ON CONFLICT (device) DO NOTHING
"""
_OWNER: Final = "SELECT gateway FROM device_owners WHERE device = $1"
_OWNERS: Final = "SELECT device, gateway FROM device_owners WHERE device = ANY($1::text[])"


async def create(conn: asyncpg.Connection) -> None:
    """Create the table if missing (under an advisory lock: workers start at once)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _OWNERS_LOCK)
        await conn.execute(OWNERS_DDL)


async def owner(pool: asyncpg.Pool, device: str) -> str | None:
    value = await pool.fetchval(_OWNER, device)
    return None if value is None else str(value)


async def claim(pool: asyncpg.Pool, gateway: str, device: str) -> str:
    return (await claim_many(pool, [(gateway, device)]))[device]


async def claim_many(pool: asyncpg.Pool, claims: Sequence[tuple[str, str]]) -> dict[str, str]:
    """`claim` for (gateway, device) pairs in order (a device's first pair counts), one transaction
    of two statements; rows in device order, so concurrent claimers take turns, never deadlock."""
    first: dict[str, str] = {}
    for gateway, device in claims:
        first.setdefault(device, gateway)
    if not first:
        return {}
    devices = sorted(first)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_CLAIM_MANY, devices, [first[d] for d in devices], now_us())
        rows = await conn.fetch(_OWNERS, devices)
    return {str(r[0]): str(r[1]) for r in rows}


async def move(pool: asyncpg.Pool, device: str, gateway: str) -> str | None:
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchval(_OWNER + " FOR UPDATE", device)
        known = await conn.fetchval("SELECT gateway FROM devices WHERE id = $1 FOR UPDATE", device)
        if row is None and known is None:
            return None
        previous = str(row if row is not None else known)
        await conn.execute(
            "INSERT INTO device_owners (device, gateway, since) VALUES ($1, $2, $3) "
            "ON CONFLICT (device) DO UPDATE SET gateway = excluded.gateway, since = excluded.since",
            device,
            gateway,
            now_us(),
        )
        await conn.execute("UPDATE devices SET gateway = $2 WHERE id = $1", device, gateway)
        return previous
