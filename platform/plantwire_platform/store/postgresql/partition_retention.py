"""Raw retention on the partitioned `points`: whole partitions dropped, the boundary one trimmed.

A partition whose whole range ends at or before the raw horizon is taken out in two steps:

1. a short transaction DETACHes it and renames it `points_retired_<n>`. DETACH needs a brief
   exclusive lock on `points`: it waits for the ingest transactions in flight (at most
   `LOCK_TIMEOUT`, else this run skips it and the next one tries again) and holds new ones for
   the moment of the catalog change only, not for a scan;
2. a second transaction counts the retired table's rows, drops it and takes them off this
   instance's shard of the point counter, together, so `count_points` stays exact.

A crash between the two leaves a `points_retired_<n>` table, which the next run finishes first.
Only the one partition that holds the horizon is DELETEd from (`ts < horizon`, pruned to it).
Dropping a table never writes each row to the WAL, and leaves no dead rows for VACUUM.
"""

from __future__ import annotations

from typing import Final

import asyncpg

from plantwire_platform.store.postgresql.schema import existing_partitions, partition_name

LOCK_TIMEOUT: Final = "5s"
_RETIRED: Final = "points_retired_"


async def _retired_tables(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace "
        "AND c.relkind = 'r' AND c.relname LIKE $1 ORDER BY c.relname",
        _RETIRED + "%",
    )
    return [r["relname"] for r in rows]


async def _retire(conn: asyncpg.Connection, index: int) -> bool:
    """Step 1 for one partition; False when its lock was not granted in time (next run)."""
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            await conn.execute(f"ALTER TABLE points DETACH PARTITION {partition_name(index)}")
            await conn.execute(f'ALTER TABLE {partition_name(index)} RENAME TO "{_RETIRED}{index}"')
    except asyncpg.LockNotAvailableError:
        return False
    return True


async def _drop(conn: asyncpg.Connection, table: str, shard: int) -> int:
    """Step 2: count, drop and uncount a retired table in one transaction; returns its rows."""
    async with conn.transaction():
        rows = int(await conn.fetchval(f'SELECT count(*) FROM "{table}"'))
        await conn.execute(f'DROP TABLE "{table}"')
        await conn.execute(
            "INSERT INTO counters (shard, points) VALUES ($1, $2) "
            "ON CONFLICT (shard) DO UPDATE SET points = counters.points + excluded.points",
            shard,
            -rows,
        )
    return rows


async def drop_old_partitions(
    conn: asyncpg.Connection, before: int, width_us: int, shard: int
) -> tuple[int, list[int]]:
    """Drop every partition wholly older than `before`, then DELETE the rest older than it.

    Returns (raw points deleted, indexes of the partitions dropped).
    """
    deleted = 0
    dropped = []
    for table in await _retired_tables(conn):  # a run that stopped between its two steps
        deleted += await _drop(conn, table, shard)
        dropped.append(int(table.removeprefix(_RETIRED)))
    for index in sorted(await existing_partitions(conn, width_us)):
        if (index + 1) * width_us <= before and await _retire(conn, index):
            deleted += await _drop(conn, f"{_RETIRED}{index}", shard)
            dropped.append(index)
    async with conn.transaction():
        status = await conn.execute("DELETE FROM points WHERE ts < $1", before)
        trimmed = int(status.rsplit(" ", 1)[-1])
        if trimmed:
            await conn.execute(
                "INSERT INTO counters (shard, points) VALUES ($1, $2) "
                "ON CONFLICT (shard) DO UPDATE SET points = counters.points + excluded.points",
                shard,
                -trimmed,
            )
    return deleted + trimmed, dropped
