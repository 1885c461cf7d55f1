"""Which gateway owns each device, as one SQLite table (the SQLite store's file, the InfluxDB
backend's registry side file); PostgreSQL keeps the same table in `postgresql/ownership.py`.

A device belongs to the gateway that first registered it. The table is separate from `devices`
(whose `gateway` column says where commands go) so that ownership is its own migration: a store
made before it existed seeds each owner from `devices.gateway` the first time the device is seen.
Only an admin's explicit move (`move`) changes an owner; it also points `devices.gateway` (and
so the commands) at the new owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from plantwire.wire import now_us
from plantwire_platform.store.app_tables import Query, Transaction

OWNERS_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS device_owners (
    device  TEXT PRIMARY KEY,
    gateway TEXT NOT NULL,
    since   INTEGER NOT NULL
) WITHOUT ROWID;
"""

APPS_GATEWAY: Final = "apps"
"""What `write_derived` registers an app's virtual device under: never an owner."""

_CLAIM: Final = f"""
INSERT INTO device_owners (device, gateway, since)
VALUES (?1, coalesce((SELECT gateway FROM devices WHERE id = ?1 AND gateway <> '{APPS_GATEWAY}'), ?2), ?3)
ON CONFLICT (device) DO NOTHING
"""
_OWNER: Final = "SELECT gateway FROM device_owners WHERE device = ?"


class OwnerTable:
    def __init__(self, transaction: Transaction, query: Query) -> None:
        self._transaction = transaction
        self._query = query

    def owner(self, device: str) -> str | None:
        rows = self._query(_OWNER, (device,))
        return str(rows[0][0]) if rows else None

    def claim(self, gateway: str, device: str) -> str:
        """The device's owner, which becomes `gateway` if the device has none yet."""
        return self.claim_many([(gateway, device)])[device]

    def claim_many(self, claims: Sequence[tuple[str, str]]) -> dict[str, str]:
        """`claim` for (gateway, device) pairs in order, in one transaction; each device's owner."""
        owners: dict[str, str] = {}
        if not claims:
            return owners
        with self._transaction() as conn:
            since = now_us()
            conn.executemany(_CLAIM, [(device, gateway, since) for gateway, device in claims])
            for _, device in claims:
                if device not in owners:
                    (owner,) = conn.execute(_OWNER, (device,)).fetchone()
                    owners[device] = str(owner)
        return owners

    def move(self, device: str, gateway: str) -> str | None:
        """Give the device to `gateway`; its previous owner, or None for a device never seen."""
        with self._transaction() as conn:
            row = conn.execute(_OWNER, (device,)).fetchone()
            known = conn.execute("SELECT gateway FROM devices WHERE id = ?", (device,)).fetchone()
            if row is None and known is None:
                return None
            previous = str(row[0] if row is not None else known[0])
            conn.execute(
                "INSERT INTO device_owners (device, gateway, since) VALUES (?, ?, ?) "
                "ON CONFLICT (device) DO UPDATE SET gateway = excluded.gateway, since = excluded.since",
                (device, gateway, now_us()),
            )
            conn.execute("UPDATE devices SET gateway = ? WHERE id = ?", (gateway, device))
        return previous
