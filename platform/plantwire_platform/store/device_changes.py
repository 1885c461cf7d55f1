"""Devices changed since a cursor: what follows the device list without reading all of it.

Every device row carries `changed`, a number that grows whenever the row is created or its
`gateway` or `endpoint` changes (the store's triggers set it: the write path is untouched). A
follower (the identifiers room's device naming) keeps a `ChangeCursor`, the (changed, id) of the
last row it handled, and asks `Catalog.changed_devices(after, limit)` for the next rows in
(changed, id) order: one indexed range scan of at most `limit` rows, however many devices exist.
A row changed again moves past the cursor and is read once more; nothing else is.

SQLite (the store's file and the InfluxDB backend's registry): `changed` comes from a counter row
bumped by the triggers; one writer at a time, so numbers follow commit order. PostgreSQL has its
own rule (`store.postgresql.device_changes`). Rows that existed before the column have
`changed = 0`: the start cursor (0, '') reads them first, by id.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True, slots=True, order=True)
class ChangeCursor:
    """Where a follower of the device list is: the (changed, id) of the last row it handled."""

    changed: int = 0
    device: str = ""


START: Final = ChangeCursor()


@dataclass(frozen=True, slots=True)
class DeviceChange:
    """A device row as the follower needs it, with its position in the change order."""

    id: str
    gateway: str
    endpoint: str | None
    cursor: ChangeCursor


MAX_CHANGES: Final = 10_000
"""Rows per `changed_devices` call at most."""

_TRIGGER_BODY: Final = """
    UPDATE counters SET value = value + 1 WHERE name = 'device_changes';
    UPDATE devices SET changed = (SELECT value FROM counters WHERE name = 'device_changes')
     WHERE id = new.id;
"""
SQLITE_SCHEMA: Final = f"""
INSERT OR IGNORE INTO counters (name, value) VALUES ('device_changes', 0);
CREATE INDEX IF NOT EXISTS devices_changed ON devices (changed, id);
-- Not a change, but the same step: a gateway's devices (GET /api/gateways, ?gateway= filters).
CREATE INDEX IF NOT EXISTS devices_gateway ON devices (gateway, id);
CREATE TRIGGER IF NOT EXISTS devices_changed_insert AFTER INSERT ON devices BEGIN {_TRIGGER_BODY} END;
CREATE TRIGGER IF NOT EXISTS devices_changed_update AFTER UPDATE OF gateway, endpoint ON devices
  WHEN old.gateway IS NOT new.gateway OR old.endpoint IS NOT new.endpoint BEGIN {_TRIGGER_BODY} END;
"""
_SQLITE_SELECT: Final = (
    "SELECT id, gateway, endpoint, changed FROM devices "
    "WHERE (changed, id) > (?, ?) ORDER BY changed, id LIMIT ?"
)


def ensure_sqlite(conn: sqlite3.Connection) -> None:
    """Add `changed`, its index and triggers where missing (a file of any earlier version gains them).

    `devices` and `counters` exist already (the base schema). Idempotent.
    """
    have = {row[1] for row in conn.execute("PRAGMA table_info(devices)").fetchall()}
    if "changed" not in have:
        conn.execute("ALTER TABLE devices ADD COLUMN changed INTEGER NOT NULL DEFAULT 0")
    conn.executescript(SQLITE_SCHEMA)


GATEWAY_COUNTS: Final = "SELECT gateway, count(*) FROM devices GROUP BY gateway ORDER BY gateway"
"""The same in SQLite and PostgreSQL: a scan of the `devices_gateway` index."""


def sqlite_changes(
    query: Callable[[str, Sequence[Any]], list[Any]], after: ChangeCursor, limit: int
) -> list[DeviceChange]:
    """The next `limit` rows after the cursor (SQLite)."""
    rows = query(_SQLITE_SELECT, (after.changed, after.device, max(0, min(limit, MAX_CHANGES))))
    return [DeviceChange(d, g, e, ChangeCursor(int(c), d)) for d, g, e, c in rows]
