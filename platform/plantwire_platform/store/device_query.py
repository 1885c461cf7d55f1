"""A page of the device list: filters, offset and limit, and the total of the filtered list.

At a hundred thousand devices the list is read a page at a time (`GET /api/devices`, the
dashboard's overview). The backends build the same filter in their own dialect from `DeviceQuery`:
SQLite's here (`sqlite_page`, used by the SQLite store and the InfluxDB backend's registry file),
PostgreSQL's in `store.postgresql.catalog`. The per-device figures (tag count, newest point) are
computed for the page's devices only, so a page costs the same at 100 devices as at 100,000.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from plantwire_platform.store.model import DeviceRecord

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000


@dataclass(frozen=True, slots=True)
class DeviceQuery:
    """Which devices, ordered by id: all filters given must match (None: no filter)."""

    gateway: str | None = None
    state: str | None = None
    """'online', 'connecting', 'offline' or 'unknown': the state as shown (store.device_state: a
    device of an offline gateway is offline, whatever its own status says)."""
    name: str | None = None
    """A substring of the device id, case-insensitive."""
    offset: int = 0
    limit: int = DEFAULT_LIMIT


@dataclass(frozen=True, slots=True)
class DevicePage:
    devices: list[DeviceRecord]
    """At most `limit` devices, ordered by id."""
    total: int
    """How many devices match the filters (all pages)."""


def shown_state_sql(col: str = "") -> str:
    """SQL for the state as `store.device_state.shown` derives it (the same in SQLite and PostgreSQL)."""
    return (
        f"(CASE WHEN {col}gateway IN (SELECT id FROM gateways WHERE state = 'offline') "
        f"THEN 'offline' ELSE {col}state END)"
    )


def sqlite_where(q: DeviceQuery, alias: str = "") -> tuple[str, list[Any]]:
    """The WHERE clause (empty or starting with ' WHERE') and its parameters, for SQLite."""
    col = f"{alias}." if alias else ""
    clauses: list[str] = []
    params: list[Any] = []
    if q.gateway is not None:
        clauses.append(f"{col}gateway = ?")
        params.append(q.gateway)
    if q.state is not None:
        clauses.append(f"{shown_state_sql(col)} = ?")
        params.append(q.state)
    if q.name:
        # instr, not LIKE: no wildcard escaping, and the substring is taken literally.
        clauses.append(f"instr(lower({col}id), lower(?)) > 0")
        params.append(q.name)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def sqlite_page(
    query: Callable[[str, Sequence[Any]], list[Any]], device_select: str, q: DeviceQuery
) -> DevicePage:
    """One page with SQLite: `device_select` is the store's device SELECT (alias `d` for devices)."""
    where, params = sqlite_where(q)
    total = int(query("SELECT count(*) FROM devices" + where, params)[0][0])
    if q.limit <= 0 or q.offset >= total:
        return DevicePage([], total)
    # The page's ids first, so that the per-device subqueries run for the page only.
    ids = f"SELECT id FROM devices{where} ORDER BY id LIMIT ? OFFSET ?"
    rows = query(f"{device_select} WHERE d.id IN ({ids}) ORDER BY d.id", [*params, q.limit, q.offset])
    return DevicePage([DeviceRecord(*row) for row in rows], total)
