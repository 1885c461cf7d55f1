"""`devices.changed` in PostgreSQL: the id of the transaction that created or last moved the row.

A sequence would not do: numbers are taken in one order and committed in another, so a follower
that saw 6 could miss a 5 committed later. The transaction id (`pg_current_xact_id()`, xid8) has
the same race, but PostgreSQL says which ones are settled: every transaction older than the
snapshot's xmin has ended. So `changed_devices` reads only rows with `changed` below that xmin, in
(changed, id) order; a row changed later gets a newer transaction id, so it is never behind a
cursor that moved past it. A long-running transaction delays what follows it (until it ends),
never loses it. Rows from before this step get 0 and are read first.

Set by the column's default on INSERT and by a BEFORE UPDATE trigger when `gateway` or `endpoint`
changes, so the write path's statements are unchanged. Idempotent step, under an advisory lock.
"""

from __future__ import annotations

from typing import Final

import asyncpg

from plantwire_platform.store.device_changes import MAX_CHANGES, ChangeCursor, DeviceChange

_LOCK: Final = 0x706C6463
MIGRATE: Final = """
ALTER TABLE devices ADD COLUMN changed xid8 NOT NULL DEFAULT '0';
ALTER TABLE devices ALTER COLUMN changed SET DEFAULT pg_current_xact_id();
CREATE INDEX IF NOT EXISTS devices_changed ON devices (changed, id);
CREATE INDEX IF NOT EXISTS devices_gateway ON devices (gateway, id);
CREATE OR REPLACE FUNCTION plantwire_device_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.changed := pg_current_xact_id();
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS devices_changed ON devices;
CREATE TRIGGER devices_changed BEFORE UPDATE OF gateway, endpoint ON devices FOR EACH ROW
    WHEN (OLD.gateway IS DISTINCT FROM NEW.gateway OR OLD.endpoint IS DISTINCT FROM NEW.endpoint)
    EXECUTE FUNCTION plantwire_device_changed();
"""
_SELECT: Final = """
SELECT id, gateway, endpoint, changed::text::bigint AS changed FROM devices
WHERE (changed, id) > ($1::text::xid8, $2) AND changed < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY changed, id LIMIT $3
"""


async def migrate(conn: asyncpg.Connection, schema_name: str) -> None:
    """Add `changed`, its index and trigger unless there (run after `schema.create`)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        await conn.execute(f'SET LOCAL search_path TO "{schema_name}"')
        have = await conn.fetchval(
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = 'devices' AND column_name = 'changed'",
            schema_name,
        )
        if not have:
            await conn.execute(MIGRATE)


async def changes(pool: asyncpg.Pool, after: ChangeCursor, limit: int) -> list[DeviceChange]:
    limit = max(0, min(limit, MAX_CHANGES))
    rows = await pool.fetch(_SELECT, str(max(0, after.changed)), after.device, limit)
    return [
        DeviceChange(r["id"], r["gateway"], r["endpoint"], ChangeCursor(r["changed"], r["id"])) for r in rows
    ]
