"""The device and tag registry that both storage backends keep in SQLite.

The SQLite store keeps it beside the points; the InfluxDB backend keeps it in a small side file.
Both have `gateways`, `devices` and `series` tables with these columns, so the statements that
register what `meta` and `status` messages say live here once, as functions of a connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Final

from plantwire.wire import DeviceMeta, DeviceStatus, GatewayStatus, now_us
from plantwire_platform.store.model import Registration, TagRecord
from plantwire_platform.store.value_types_schema import dims_of, enum_of, meta_columns

TAGS_SELECT: Final = (
    "SELECT device, tag, node_id, data_type, unit, description, writable, low, high, derived_by, "
    "dims, enum_names, locale FROM series WHERE device = ? ORDER BY tag"
)


def ensure_device(conn: sqlite3.Connection, gateway: str, device: str) -> None:
    conn.execute(
        "INSERT INTO devices (id, gateway, first_seen) VALUES (?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET gateway = excluded.gateway",
        (device, gateway, now_us()),
    )


def apply_meta(conn: sqlite3.Connection, gateway: str, device: str, meta: DeviceMeta) -> None:
    """Register the device and upsert its tags (tags missing from `meta` are kept)."""
    ensure_device(conn, gateway, device)
    conn.execute("UPDATE devices SET endpoint = ?, root = ? WHERE id = ?", (meta.endpoint, meta.root, device))
    conn.executemany(
        """INSERT INTO series
             (device, tag, node_id, data_type, unit, description, writable, low, high,
              dims, enum_names, locale)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (device, tag) DO UPDATE SET
             node_id = excluded.node_id, data_type = excluded.data_type, unit = excluded.unit,
             description = excluded.description, writable = excluded.writable,
             low = excluded.low, high = excluded.high,
             dims = excluded.dims, enum_names = excluded.enum_names, locale = excluded.locale""",
        [
            (
                device,
                t.tag,
                t.node_id,
                t.data_type,
                t.unit,
                t.description,
                t.writable,
                t.low,
                t.high,
                *meta_columns(t),
            )
            for t in meta.tags
        ],
    )


def apply_device_status(conn: sqlite3.Connection, gateway: str, device: str, status: DeviceStatus) -> None:
    ensure_device(conn, gateway, device)
    conn.execute(
        "UPDATE devices SET state = ?, state_since = ?, endpoint = ?, error = ? WHERE id = ?",
        (status.state, status.since, status.endpoint, status.error, device),
    )


def apply_gateway_status(conn: sqlite3.Connection, gateway: str, status: GatewayStatus) -> None:
    conn.execute(
        """INSERT INTO gateways (id, state, since, version) VALUES (?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET
             state = excluded.state, since = excluded.since, version = excluded.version""",
        (gateway, status.state, status.since, status.version),
    )


def apply_registrations(conn: sqlite3.Connection, registrations: Sequence[Registration]) -> None:
    """Apply each message in order (inside the caller's one transaction): statements on one file
    cost microseconds, the commit is what a batch saves."""
    for r in registrations:
        body = r.body
        if isinstance(body, GatewayStatus):
            apply_gateway_status(conn, r.gateway, body)
        else:
            assert r.device is not None  # Registration checks it
            if isinstance(body, DeviceMeta):
                apply_meta(conn, r.gateway, r.device, body)
            else:
                apply_device_status(conn, r.gateway, r.device, body)


def tag_records(rows: list[tuple[object, ...]]) -> list[TagRecord]:
    """Rows of TAGS_SELECT as records."""
    return [
        TagRecord(d, t, n, dt, u, desc, bool(w), lo, hi, by, dims_of(dims), enum_of(names), loc)  # type: ignore[arg-type]  # TAGS_SELECT's columns are these types
        for d, t, n, dt, u, desc, w, lo, hi, by, dims, names, loc in rows
    ]
