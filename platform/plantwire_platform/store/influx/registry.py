"""The InfluxDB backend's registry of gateways, devices and tags: a small local SQLite side file.

Why not a `plantwire_meta` measurement in InfluxDB: the registry is relational and small (upserts of
tag descriptions, "tags not in meta are kept", a per-device sequence number read back on every
start), which InfluxDB's append-only points and `last()` queries express clumsily and without
read-your-writes. Everything in it except `last_seq`, `first_seen` and the point counter can be
rebuilt from MQTT: meta and status messages are retained, so a platform with a lost side file
re-learns every device within seconds. The points themselves, the irreplaceable part, live in InfluxDB.

One connection guarded by a lock: every operation is a few rows, so readers never wait long.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from plantwire.wire import DeviceMeta, DeviceStatus, GatewayStatus, now_us
from plantwire_platform.store import device_changes, registry, value_types_schema
from plantwire_platform.store.app_tables import ALARMS_SCHEMA, AlarmTable, ensure_derived_column
from plantwire_platform.store.audit_table import AUDIT_SCHEMA, AuditTable
from plantwire_platform.store.device_changes import ChangeCursor, DeviceChange
from plantwire_platform.store.device_query import DevicePage, DeviceQuery, sqlite_page
from plantwire_platform.store.model import DeviceRecord, Registration, StoreError, TagRecord
from plantwire_platform.store.ownership_table import OWNERS_SCHEMA, OwnerTable
from plantwire_platform.store.sqlite_transaction import transaction

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS gateways (
    id TEXT PRIMARY KEY, state TEXT NOT NULL DEFAULT 'unknown', since INTEGER, version TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY, gateway TEXT NOT NULL, endpoint TEXT, root TEXT,
    state TEXT NOT NULL DEFAULT 'unknown', state_since INTEGER, error TEXT,
    first_seen INTEGER NOT NULL, last_seq INTEGER NOT NULL DEFAULT 0, last_data INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series (
    device TEXT NOT NULL, tag TEXT NOT NULL, node_id TEXT, data_type TEXT, unit TEXT, description TEXT,
    writable INTEGER NOT NULL DEFAULT 0, low REAL, high REAL,
    PRIMARY KEY (device, tag)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO counters (name, value) VALUES ('points', 0);
"""

_DEVICE_SELECT: Final = """
SELECT d.id, d.gateway, d.endpoint, d.state, d.state_since, d.error, coalesce(g.state, 'unknown'),
       (SELECT count(*) FROM series s WHERE s.device = d.id), d.first_seen, d.last_data, d.last_seq,
       g.since
FROM devices d LEFT JOIN gateways g ON g.id = d.gateway
"""


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What a successful InfluxDB write changes in the registry."""

    devices: Mapping[str, str]
    """device -> gateway of every device written to."""
    last_seq: Mapping[str, int]
    last_data: Mapping[str, int]
    """device -> newest source timestamp in the write."""
    new_series: Iterable[tuple[str, str, str | None]]
    """(device, tag, guessed data type) of tags seen in data; existing rows are left alone."""
    stored: int


class InfluxRegistry:
    """Gateways, devices, tags, sequence numbers and the point counter, in one SQLite file."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._last_seq: dict[str, int] = dict(conn.execute("SELECT id, last_seq FROM devices").fetchall())
        self._data_types: dict[tuple[str, str], str | None] = {
            (d, t): dt for d, t, dt in conn.execute("SELECT device, tag, data_type FROM series").fetchall()
        }
        self.alarms = AlarmTable(self._transaction, self._query)
        self.audit = AuditTable(self._transaction, self._query)
        self.owners = OwnerTable(self._transaction, self._query)

    @classmethod
    def open(cls, path: Path) -> InfluxRegistry:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            conn.executescript(ALARMS_SCHEMA)
            conn.executescript(AUDIT_SCHEMA)
            conn.executescript(OWNERS_SCHEMA)
            ensure_derived_column(conn)
            value_types_schema.ensure_columns(conn)
            device_changes.ensure_sqlite(conn)
        except (sqlite3.Error, OSError) as err:
            raise StoreError(f"cannot open the InfluxDB registry at {path}: {err}") from err
        return cls(conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                with transaction(self._conn) as conn:
                    yield conn
            except sqlite3.Error as err:
                raise StoreError(f"registry write failed: {err}") from err

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as err:
                raise StoreError(f"registry read failed: {err}") from err

    # --- write side ------------------------------------------------------------------------------

    def last_seq(self, device: str) -> int:
        return self._last_seq.get(device, 0)

    def knows_series(self, device: str, tag: str) -> bool:
        return (device, tag) in self._data_types

    def data_type(self, device: str, tag: str) -> str | None:
        return self._data_types.get((device, tag))

    def record_write(self, outcome: WriteOutcome) -> None:
        with self._transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO devices (id, gateway, first_seen) VALUES (?, ?, ?)",
                [(dev, gw, now_us()) for dev, gw in outcome.devices.items()],
            )
            conn.executemany(
                "UPDATE devices SET last_seq = max(last_seq, ?) WHERE id = ?",
                [(seq, dev) for dev, seq in outcome.last_seq.items()],
            )
            conn.executemany(
                "UPDATE devices SET last_data = max(coalesce(last_data, 0), ?) WHERE id = ?",
                [(ts, dev) for dev, ts in outcome.last_data.items()],
            )
            new_series = list(outcome.new_series)
            conn.executemany(
                "INSERT OR IGNORE INTO series (device, tag, data_type) VALUES (?, ?, ?)", new_series
            )
            conn.execute("UPDATE counters SET value = value + ? WHERE name = 'points'", (outcome.stored,))
        for dev, seq in outcome.last_seq.items():
            self._last_seq[dev] = max(seq, self._last_seq.get(dev, 0))
        for dev, tag, data_type in new_series:
            self._data_types.setdefault((dev, tag), data_type)

    def mark_derived(self, app: str, series: Iterable[tuple[str, str, str | None]]) -> None:
        """Mark (device, tag, unit) series as computed by `app` (they exist: record_write ran first)."""
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE series SET derived_by = ?, unit = coalesce(?, unit) WHERE device = ? AND tag = ?",
                [(app, unit, device, tag) for device, tag, unit in series],
            )

    def apply_meta(self, gateway: str, device: str, meta: DeviceMeta) -> None:
        self.apply_registrations([Registration(gateway, device, meta)])

    def apply_device_status(self, gateway: str, device: str, status: DeviceStatus) -> None:
        self.apply_registrations([Registration(gateway, device, status)])

    def apply_gateway_status(self, gateway: str, status: GatewayStatus) -> None:
        self.apply_registrations([Registration(gateway, None, status)])

    def apply_registrations(self, registrations: Sequence[Registration]) -> None:
        """In order, in one transaction of the side file (one commit for the whole batch)."""
        if not registrations:
            return
        with self._transaction() as conn:
            registry.apply_registrations(conn, registrations)
        # The caches learn only what committed.
        for r in registrations:
            if r.device is None:
                continue
            self._last_seq.setdefault(r.device, 0)
            if isinstance(r.body, DeviceMeta):
                for t in r.body.tags:
                    self._data_types[(r.device, t.tag)] = t.data_type

    # --- read side -------------------------------------------------------------------------------

    def list_devices(self) -> list[DeviceRecord]:
        return [DeviceRecord(*row) for row in self._query(_DEVICE_SELECT + " ORDER BY d.id")]

    def page_devices(self, query: DeviceQuery) -> DevicePage:
        return sqlite_page(self._query, _DEVICE_SELECT, query)

    def gateway_device_counts(self) -> list[tuple[str, int]]:
        return [(str(g), int(n)) for g, n in self._query(device_changes.GATEWAY_COUNTS)]

    def changed_devices(self, after: ChangeCursor, limit: int) -> list[DeviceChange]:
        return device_changes.sqlite_changes(self._query, after, limit)

    def get_device(self, device: str) -> DeviceRecord | None:
        rows = self._query(_DEVICE_SELECT + " WHERE d.id = ?", (device,))
        return DeviceRecord(*rows[0]) if rows else None

    def list_tags(self, device: str) -> list[TagRecord]:
        return registry.tag_records(self._query(registry.TAGS_SELECT, (device,)))

    def units(self, device: str) -> dict[str, str | None]:
        return {str(t): u for t, u in self._query("SELECT tag, unit FROM series WHERE device = ?", (device,))}

    def count_points(self) -> int:
        return int(self._query("SELECT value FROM counters WHERE name = 'points'")[0][0])
